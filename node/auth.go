package node

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"fmt"
	"os"
)

// authFile is the users of memcached's -Y file: one "user:password" per
// line. It is the server's Authenticator.
type authFile map[string][]byte

func readAuthFile(path string) (authFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	users := authFile{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		user, pass, ok := bytes.Cut(bytes.TrimRight(sc.Bytes(), "\r"), []byte(":"))
		if !ok || len(user) == 0 {
			continue
		}
		users[string(user)] = append([]byte(nil), pass...)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("auth file %s: no user:password line", path)
	}
	return users, nil
}

// Check compares in constant time for a known user.
func (a authFile) Check(user, password []byte) bool {
	want, ok := a[string(user)]
	return ok && subtle.ConstantTimeCompare(want, password) == 1
}
