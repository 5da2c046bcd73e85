package server

import (
	"shoal/protocol"
	"shoal/store"
)

// replyDumpUnsupported answers sd on a peer port without Config.Dumps.
const replyDumpUnsupported = "SERVER_ERROR dump not supported"

// shardDump answers sd: one mg-style hit per item, "VA <len> k<key>
// f<flags> t<ttl> c<cas>" and the value (exactly what "mg <key> v k f t c"
// answers, so the peer reads it with the meta reply parser), then one
// "HD k<base64 key> b c<version>" per delete the Dumper remembers, then EN;
// with since, only what changed since then, or ReplyNoDelta.
//
// A dump can be the whole cache, so it is streamed: the output buffer is
// written out each time it passes flushAt, never held whole. A write error
// stops the Dumper; the connection then closes as after any write error.
func (c *conn) shardDump(cmd *protocol.ShardDump) {
	dumper := c.srv.cfg.Dumps
	if dumper == nil {
		c.line(replyDumpUnsupported)
		return
	}
	ok := dumper.Dump(cmd.Want, cmd.Since, func(key []byte, it store.Item, val []byte) bool {
		if c.err != nil {
			return false
		}
		c.out = protocol.AppendMetaValueHeader(c.out, len(val))
		c.out = protocol.AppendMetaKey(c.out, key, it.KeyBinary)
		c.out = protocol.AppendMetaFlagUint(c.out, 'f', uint64(it.Flags))
		c.out = protocol.AppendMetaFlagInt(c.out, 't', ttlLeft(c.srv.items.Now(), it.Exptime))
		c.out = protocol.AppendMetaFlagUint(c.out, 'c', it.CAS)
		c.out = protocol.AppendCRLF(c.out)
		c.out = protocol.AppendCRLF(append(c.out, val...))
		return c.dumped()
	})
	if !ok {
		c.line(protocol.ReplyNoDelta)
		return
	}
	if c.err == nil {
		dumper.DumpDeletes(cmd.Want, cmd.Since, func(key []byte, version uint64) bool {
			if c.err != nil {
				return false
			}
			c.out = protocol.AppendMetaStatus(c.out, protocol.MetaHD)
			c.out = protocol.AppendMetaKey(c.out, key, true)
			c.out = protocol.AppendMetaFlagUint(c.out, 'c', version)
			c.out = protocol.AppendCRLF(c.out)
			return c.dumped()
		})
	}
	if c.err == nil {
		c.out = protocol.AppendCRLF(protocol.AppendMetaStatus(c.out, protocol.MetaEN))
	}
}

// dumped writes out the output buffer once it passes flushAt; false when
// the connection has failed.
func (c *conn) dumped() bool {
	if len(c.out) >= flushAt {
		return c.flush() == nil
	}
	return c.err == nil
}
