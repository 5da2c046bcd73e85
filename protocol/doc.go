// Package protocol converts the memcached text and binary protocols between
// bytes and typed values, and does nothing else: it knows no network, store, logger or
// metrics, and imports no other shoal package.
//
// Requests flow in one direction:
//
//	bytes ──► Reader.Next / Parse ──► Command (one Go type per family) ──► server
//	                      └────────► *Error (reply line, keep the connection)
//	                      └────────► other error (close the connection)
//
// Parse is the pure entry point: it parses one command from the start of a
// buffer and says how many bytes it consumed, or returns ErrIncomplete. The
// Reader wraps an io.Reader with a buffer, enforces the item size limit
// without buffering oversized values, and hands back commands whose byte
// slices alias its buffer. Its memory is bounded by whoever owns it
// (Reader.UseMemory): the buffer is borrowed from a Buffers and given back
// when nothing is buffered (Release), a data block larger than it is held
// only as a Budget allows (else refused as memcached refuses an item it
// has no memory for), and a get line longer than it comes out in parts
// (Retrieval.More, getline.go).
//
// Replies flow the other way through the Append* encoders, which append to a
// caller-owned buffer and never allocate once it has capacity.
//
// Every accept/reject decision mirrors memcached 1.6.18 (proto_text.c): its
// space-only tokenizer with at most 24 tokens, its strtol/strtoul quirks
// (leading whitespace, "-0", 32-bit truncation of flags, exptime and sizes),
// noreply detection on the last token, and its exact error lines.
//
// The binary protocol (binary.go, binary_reader.go) is memcached 1.6's
// protocol_binary.h: ParseBinary is its pure entry point, and the Reader
// serves a connection whose first byte is 0x80 (SetBinding: memcached -B)
// as a stream of *Binary requests, with the length checks, the "Invalid
// arguments" and "Unknown command" cases and even the framing of unknown
// opcodes of memcached 1.6.18 (proto_bin.c); AppendBinary* encode replies.
//
// The one exception is opt-in: Reader.AcceptPeerExtensions, for the port
// only cluster nodes talk to, adds the meta E, Y and Z flags and the sd
// shard dump (ShardDump). Parse and a default Reader reject them exactly as
// memcached does, so the client port stays memcached 1.6.18.
package protocol
