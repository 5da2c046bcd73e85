package protocol

// MetaFlag is one flag token of a meta command, kept in request order
// because memcached echoes return flags in the order they were asked for
// ("mg a v t f s c k" answers "VA 2 t-1 f0 s2 c2 ka").
type MetaFlag struct {
	Code  byte   // the flag letter: 'v', 'T', 'O', ...
	Value []byte // the rest of the token: "30" for T30, the opaque for O
}

// MetaOptions holds the flags of a meta command, both in request order
// (Flags) and decoded into typed fields. Numeric flag values are parsed as
// memcached parses them (TTLs truncated to 32 bits).
type MetaOptions struct {
	Flags []MetaFlag

	Base64           bool // b: the key was sent base64-encoded (Key holds it decoded)
	Quiet            bool // q: suppress the nominal reply (mg EN, ms HD, md HD, ma HD/VA)
	ReturnValue      bool // v
	ReturnKey        bool // k
	ReturnCAS        bool // c
	ReturnClientFlag bool // f
	ReturnSize       bool // s
	ReturnTTL        bool // t
	ReturnHit        bool // h
	ReturnLastAccess bool // l
	NoBump           bool // u
	Invalidate       bool // I

	HasOpaque bool
	Opaque    []byte // O value, without the 'O'; echo as " O"+Opaque

	HasCAS bool
	CAS    uint64 // C

	HasTTL bool
	TTL    int64 // T: new TTL, as sent (relative, absolute or negative)

	HasVivify bool
	VivifyTTL int64 // N: autovivify on miss with this TTL

	HasRecache bool
	RecacheTTL int64 // R: win the recache token when the TTL is below this

	HasClientFlags bool
	ClientFlags    uint32 // F (ms)

	// HasNewCAS and NewCAS are E<cas>: the CAS the written item gets (ms;
	// md with I; ma). This is a shoal peer extension, not memcached 1.6.18
	// (which rejects E as an invalid flag): a Reader parses it only after
	// AcceptPeerExtensions, and Parse never does.
	HasNewCAS bool
	NewCAS    uint64

	// HasEpoch/Epoch (Y<epoch>) and HasSeq/Seq (Z<seq>) say where a
	// replicated ms or md comes from: the sender's ring epoch and its
	// per-shard sequence number, so that a replica can order writes and
	// refuse ones from an older ring (answering ReplyStaleEpoch). Peer
	// extensions like E: a Reader
	// parses them only after AcceptPeerExtensions (on ms and md; mg and ma
	// reject them), and Parse never does.
	HasEpoch bool
	Epoch    uint64
	HasSeq   bool
	Seq      uint64

	// HasRoom and Room are A<bytes> on an mg: the most bytes of value the
	// sender can take now. A hit with a larger value is answered without
	// it ("HD ... s<size>"), so that the sender asks again once it has
	// room. A peer extension like Y: parsed only after
	// AcceptPeerExtensions, on mg only.
	HasRoom bool
	Room    uint64

	Mode    byte   // M: ms E A P R S, ma I + D -; 0 when absent
	Initial uint64 // J (ma N): initial value
	Delta   uint64 // D (ma): 1 when absent
}

// MetaGet is mg.
type MetaGet struct {
	Key []byte
	MetaOptions
}

// MetaSet is ms with its data block.
type MetaSet struct {
	Key  []byte
	Data []byte // exactly the declared number of bytes, without "\r\n"
	// Op is the classic verb memcached runs: from M (S or none: set, E:
	// add, A: append, P: prepend, R: replace), upgraded to OpCAS when C is
	// present with set or replace. I (Invalidate) applies only to OpCAS.
	Op StoreOp
	MetaOptions
}

// MetaDelete is md.
type MetaDelete struct {
	Key []byte
	MetaOptions
}

// MetaArith is ma.
type MetaArith struct {
	Key  []byte
	Decr bool // M D or M -
	MetaOptions
}

// MetaDebug is me. memcached answers
// "ME <key> exp=<ttl|-1> la=<secs> cas=<cas> fetch=<yes|no> cls=<id> size=<n>"
// or "EN".
type MetaDebug struct {
	Key    []byte
	Base64 bool
}

func (*MetaGet) command()    {}
func (*MetaSet) command()    {}
func (*MetaDelete) command() {}
func (*MetaArith) command()  {}
func (*MetaDebug) command()  {}

// ReplyStaleEpoch is a replica's answer to a replicated ms or md (Y) whose
// epoch predates the last change of its key's owners there. A peer
// extension: the sender may send the key's current state again, with the
// epoch of a newer view.
const ReplyStaleEpoch = "SERVER_ERROR stale epoch"

// ReplyPaused, ReplyNotOwner and ReplyUnvouched are a shoal peer port's
// refusals of a forwarded request: one read before the node was paused
// (its sender gave up on it and may ask again), a write on a key the node
// does not own in its view, and a write that depends on an item the node
// cannot vouch for while it takes the key's shard over (its sender tries
// the key's next owner for both). The server writes them as it writes any
// cache error, SERVER_ERROR and the error's text.
const (
	ReplyPaused    = "SERVER_ERROR cluster: request predates a pause"
	ReplyNotOwner  = "SERVER_ERROR cluster: not an owner of the key in this view"
	ReplyUnvouched = "SERVER_ERROR cluster: no source vouches for the key yet"
)

// ReplyInvalidFlag is memcached's answer to a meta flag it does not know:
// what a peer without one of shoal's extensions (mg A, from before it)
// answers a request that carries it.
const ReplyInvalidFlag = replyInvalidFlag
