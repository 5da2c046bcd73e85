package store

import "strconv"

func key(i int) []byte { return strconv.AppendInt([]byte("key:"), int64(i), 10) }
