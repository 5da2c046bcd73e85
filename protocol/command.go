package protocol

// Command is one parsed request. The set of implementations is closed: the
// unexported method keeps other packages from adding their own, so a type
// switch in the connection server can be exhaustive.
//
// Byte slices in a Command alias the buffer the command was parsed from and
// are valid only until the next call on the Reader (or until that buffer is
// reused by the caller of Parse).
type Command interface{ command() }

// StoreOp is the verb of a classic storage command.
type StoreOp uint8

// Classic storage verbs.
const (
	OpSet StoreOp = iota
	OpAdd
	OpReplace
	OpAppend
	OpPrepend
	OpCAS
)

// Storage is set, add, replace, append, prepend or cas, with its data block.
type Storage struct {
	Op      StoreOp
	Key     []byte
	Flags   uint32
	Exptime int64 // as sent: 0, relative seconds, absolute unix time or negative
	CAS     uint64
	NoReply bool
	Data    []byte // exactly the declared number of bytes, without "\r\n"
}

// RetrieveOp is the verb of a classic retrieval command.
type RetrieveOp uint8

// Classic retrieval verbs.
const (
	OpGet RetrieveOp = iota
	OpGets
	OpGat
	OpGats
)

// Retrieval is get, gets, gat or gats.
type Retrieval struct {
	Op      RetrieveOp
	Exptime int64 // gat and gats only
	Keys    [][]byte
	// BadKey is set when a key after Keys was invalid (over 250 bytes).
	// memcached 1.6.18 still looks up (and for gat, touches) the keys
	// before it, then discards every reply not yet sent on the connection
	// (including replies to earlier pipelined commands) and answers only
	// "CLIENT_ERROR bad command line format", without END.
	BadKey bool
	// More: the get line goes on beyond what a Reader buffers; its next
	// keys come in the following Retrievals (same Op), and END only after
	// the last, the one without More. Keys are looked up as they arrive,
	// so a line of any length is answered in bounded memory.
	More bool
}

// Delete is the classic delete command.
type Delete struct {
	Key     []byte
	NoReply bool
}

// Arith is incr or decr.
type Arith struct {
	Incr    bool
	Key     []byte
	Delta   uint64
	NoReply bool
}

// Touch is the classic touch command.
type Touch struct {
	Key     []byte
	Exptime int64
	NoReply bool
}

// FlushAll is flush_all with an optional delay in seconds.
type FlushAll struct {
	Delay    int64
	HasDelay bool
	NoReply  bool
}

// Stats is the stats command; Arg is empty for general stats, or "settings",
// "items", "slabs", "conns", "reset", ... as sent.
type Stats struct {
	Arg  []byte
	Args [][]byte // every argument; Args[0] is Arg when present
}

// Admin is one of the argument-free or nearly argument-free commands.
type Admin struct {
	Op      AdminOp
	Arg     uint64 // verbosity level, cache_memlimit megabytes
	NoReply bool
	// Shutdown only: "shutdown graceful" sets Graceful; any other argument
	// sets BadMode (memcached: "CLIENT_ERROR invalid shutdown mode" when
	// shutdown is enabled, "ERROR: shutdown not enabled" otherwise).
	Graceful bool
	BadMode  bool
}

// AdminOp names an Admin command.
type AdminOp uint8

// Admin commands.
const (
	OpVersion AdminOp = iota
	OpVerbosity
	OpQuit
	OpShutdown
	OpCacheMemlimit
	OpMetaNoop     // mn
	OpRefreshCerts // refresh_certs
)

// Maintenance is one of memcached's maintenance command families, whose
// subcommands the server interprets: lru_crawler (metadump, crawl, enable,
// disable, sleep, tocrawl), slabs (automove, reassign), lru (mode,
// temp_ttl, tune) and watch.
type Maintenance struct {
	Family MaintFamily
	Args   [][]byte // the tokens after the command word
}

// MaintFamily names a Maintenance command.
type MaintFamily uint8

// Maintenance families.
const (
	MaintCrawler MaintFamily = iota // lru_crawler
	MaintSlabs                      // slabs
	MaintLRU                        // lru
	MaintWatch                      // watch
)

func (*Maintenance) command() {}
func (*Storage) command()     {}
func (*Retrieval) command()   {}
func (*Delete) command()      {}
func (*Arith) command()       {}
func (*Touch) command()       {}
func (*FlushAll) command()    {}
func (*Stats) command()       {}
func (*Admin) command()       {}
