package protocol

import (
	"encoding/base64"
	"strconv"
)

// ShardDump is sd, a shoal peer extension (see Reader.AcceptPeerExtensions):
// "sd <bitmap> [<since>]\r\n" asks a node for every item it holds in the
// shards set in the bitmap, so that a node coming back can warm up from a
// peer. The node answers each item as mg <key> v k f t c would, then each
// delete it remembers in those shards as "HD k<base64 key> b c<version>",
// then EN. With since (a version, decimal), only the items and deletes of
// that version or newer come, or, when the node cannot vouch that they are
// all that changed since (it dropped newer items by itself, or forgot
// newer deletes), the one line ReplyNoDelta.
//
// The bitmap travels as standard base64 (with padding) of bytes in which
// bit i (byte i/8, bit i%8, least significant first) set means "shard i
// wanted"; WantsShard reads it. Only the side that owns a ring knows what a
// shard is; the wire carries bits.
type ShardDump struct {
	Want  []byte // the decoded bitmap
	Since uint64 // 0: everything
}

// ReplyNoDelta answers an sd with since that the node cannot serve.
const ReplyNoDelta = "SERVER_ERROR no delta since that version"

func (*ShardDump) command() {}

// WantsShard reports whether bit shard is set in the bitmap want. Bits past
// the end of want are clear.
func WantsShard(want []byte, shard int) bool {
	if shard < 0 || shard/8 >= len(want) {
		return false
	}
	return want[shard/8]&(1<<(shard%8)) != 0
}

// AppendShardDumpRequest appends "sd <base64(want)>\r\n", with " <since>"
// before the line end when since is not 0.
func AppendShardDumpRequest(dst, want []byte, since uint64) []byte {
	dst = base64.StdEncoding.AppendEncode(append(dst, "sd "...), want)
	if since != 0 {
		dst = strconv.AppendUint(append(dst, ' '), since, 10)
	}
	return AppendCRLF(dst)
}

// parseShardDump reads "sd <bitmap> [<since>]". Strict base64, unlike memcached's
// lenient key decoder: a bitmap that does not decode exactly would dump the
// wrong shards.
func (p *parser) parseShardDump(next int) (Command, int, int, error) {
	tk := &p.tk
	if tk.n != 2 && tk.n != 3 {
		return nil, next, 0, p.fail(replyBadFormat, false)
	}
	var since uint64
	if tk.n == 3 {
		v, ok := ParseUint(tk.t[2])
		if !ok || v == 0 {
			return nil, next, 0, p.fail(replyBadFormat, false)
		}
		since = v
	}
	src := tk.t[1]
	d := &p.dump
	want := d.Want[:0]
	if n := base64.StdEncoding.DecodedLen(len(src)); cap(want) < n {
		want = make([]byte, 0, n)
	}
	want, err := base64.StdEncoding.AppendDecode(want, src)
	if err != nil || len(want) == 0 {
		return nil, next, 0, p.fail(replyBadChunk, false)
	}
	d.Want, d.Since = want, since
	return d, next, 0, nil
}
