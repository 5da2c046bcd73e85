package protocol

import (
	"encoding/base64"
	"strconv"
)

// Fixed reply lines, "\r\n" included, for append(dst, ReplyStored...).
const (
	ReplyStored     = "STORED\r\n"
	ReplyNotStored  = "NOT_STORED\r\n"
	ReplyExists     = "EXISTS\r\n"
	ReplyNotFound   = "NOT_FOUND\r\n"
	ReplyDeleted    = "DELETED\r\n"
	ReplyTouched    = "TOUCHED\r\n"
	ReplyOK         = "OK\r\n"
	ReplyEnd        = "END\r\n"
	ReplyError      = "ERROR\r\n"
	ReplyReset      = "RESET\r\n"
	ReplyNonNumeric = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	ReplyTooLarge   = "SERVER_ERROR object too large for cache\r\n"
	ReplyNoMemory   = "SERVER_ERROR out of memory storing object\r\n"
	// ReplyMetaNoMemory is ma's out-of-memory line, shorter than
	// ReplyNoMemory, the storage commands' (memcached 1.6.18).
	ReplyMetaNoMemory = "SERVER_ERROR out of memory\r\n"

	// Meta status codes, without flags or "\r\n": see AppendMetaStatus.
	MetaHD  = "HD"
	MetaEN  = "EN"
	MetaNF  = "NF"
	MetaNS  = "NS"
	MetaEX  = "EX"
	ReplyMN = "MN\r\n"
)

// AppendError appends e's reply line. It appends nothing when e.NoReply.
func AppendError(dst []byte, e *Error) []byte {
	if e.NoReply {
		return dst
	}
	return append(append(dst, e.Reply...), "\r\n"...)
}

// AppendValueHeader appends "VALUE <key> <flags> <size>[ <cas>]\r\n".
func AppendValueHeader(dst, key []byte, flags uint32, size int, cas uint64, withCAS bool) []byte {
	dst = append(dst, "VALUE "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(flags), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(size), 10)
	if withCAS {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, cas, 10)
	}
	return append(dst, "\r\n"...)
}

// AppendValue appends one get/gets hit: the VALUE line, data and "\r\n".
func AppendValue(dst, key []byte, flags uint32, data []byte, cas uint64, withCAS bool) []byte {
	dst = AppendValueHeader(dst, key, flags, len(data), cas, withCAS)
	dst = append(dst, data...)
	return append(dst, "\r\n"...)
}

// AppendEnd appends "END\r\n".
func AppendEnd(dst []byte) []byte { return append(dst, ReplyEnd...) }

// AppendUint appends v and "\r\n": the reply to incr and decr.
func AppendUint(dst []byte, v uint64) []byte {
	return append(strconv.AppendUint(dst, v, 10), "\r\n"...)
}

// AppendMetaStatus starts a meta reply with a two-letter code (MetaHD,
// MetaEN, ...). Follow it with flags and AppendCRLF.
func AppendMetaStatus(dst []byte, code string) []byte { return append(dst, code...) }

// AppendMetaValueHeader starts "VA <size>"; after the flags and "\r\n" come
// the data and another "\r\n".
func AppendMetaValueHeader(dst []byte, size int) []byte {
	return strconv.AppendInt(append(dst, "VA "...), int64(size), 10)
}

// AppendMetaFlag appends a bare return flag: " W", " X", " Z".
func AppendMetaFlag(dst []byte, code byte) []byte { return append(dst, ' ', code) }

// AppendMetaFlagInt appends " <code><v>", e.g. " t-1" or " s2".
func AppendMetaFlagInt(dst []byte, code byte, v int64) []byte {
	return strconv.AppendInt(append(dst, ' ', code), v, 10)
}

// AppendMetaFlagUint appends " <code><v>", e.g. " c42".
func AppendMetaFlagUint(dst []byte, code byte, v uint64) []byte {
	return strconv.AppendUint(append(dst, ' ', code), v, 10)
}

// AppendMetaOpaque echoes an opaque: " O<opaque>".
func AppendMetaOpaque(dst, opaque []byte) []byte {
	return append(append(dst, ' ', 'O'), opaque...)
}

// AppendMetaKey appends " k<key>", or " k<base64(key)> b" for binary keys.
func AppendMetaKey(dst, key []byte, b64 bool) []byte {
	dst = append(dst, ' ', 'k')
	if !b64 {
		return append(dst, key...)
	}
	return append(base64.StdEncoding.AppendEncode(dst, key), ' ', 'b')
}

// AppendMetaDebug appends the me reply line, "\r\n" included:
// "ME <key> exp=<exp> la=<la> cas=<cas> fetch=<yes|no> cls=<cls> size=<size>".
// exp is -1 for items that never expire.
func AppendMetaDebug(dst, key []byte, b64 bool, exp int64, la int64, cas uint64, fetched bool, cls int, size int64) []byte {
	dst = append(dst, "ME "...)
	if b64 {
		dst = base64.StdEncoding.AppendEncode(dst, key)
	} else {
		dst = append(dst, key...)
	}
	dst = strconv.AppendInt(append(dst, " exp="...), exp, 10)
	dst = strconv.AppendInt(append(dst, " la="...), la, 10)
	dst = strconv.AppendUint(append(dst, " cas="...), cas, 10)
	if fetched {
		dst = append(dst, " fetch=yes"...)
	} else {
		dst = append(dst, " fetch=no"...)
	}
	dst = strconv.AppendInt(append(dst, " cls="...), int64(cls), 10)
	dst = strconv.AppendInt(append(dst, " size="...), size, 10)
	return append(dst, "\r\n"...)
}

// AppendCRLF ends a line.
func AppendCRLF(dst []byte) []byte { return append(dst, "\r\n"...) }
