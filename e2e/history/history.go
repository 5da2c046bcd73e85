package history

import (
	"sync"
	"time"
)

// Kind is what an operation did.
type Kind uint8

const (
	Write Kind = iota + 1 // set key = Value
	Read                  // get key
)

// Result is how an operation ended, as the client saw it.
type Result uint8

const (
	OK      Result = iota + 1 // STORED, or a hit (Value holds what was read)
	Miss                      // a read found nothing
	Failed                    // an error reply or a broken connection
	Timeout                   // no reply within the client's timeout
)

func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case Miss:
		return "miss"
	case Failed:
		return "error"
	case Timeout:
		return "timeout"
	}
	return "?"
}

// Op is one client operation. Start and End are offsets from the start of
// the run on the monotonic clock (Log.Now).
type Op struct {
	Kind   Kind
	Key    string
	Value  int64 // written, or read when Result is OK; values are > 0
	Node   string
	Client int
	Start  time.Duration
	End    time.Duration
	Result Result
	Err    string // the client's error, when Result is Failed or Timeout
	Final  bool   // a checkpoint read, made with the workload stopped
}

// Episode is one injected fault (or the baseline, Kind "none"), from its
// injection to the checkpoint that ends it.
type Episode struct {
	Kind    string // "kill -9", "sigstop", "etcd kill -9", ...: the table's rows
	Target  string // the node (or "etcd") it hit
	Detail  string // e.g. "stopped 4.2 s"
	Start   time.Duration
	Healed  time.Duration // restarted, SIGCONT, etcd back; Start when nothing is undone
	Settled time.Duration // every node saw the same ring again, all alive
	Check   Checkpoint
}

// Checkpoint is the state after an episode settled, read with the
// workload stopped: each owner's own copy of every key (the Final reads
// through every node are in the Log).
type Checkpoint struct {
	Start, End time.Duration
	// Owners of each key in the ring of the members at the checkpoint.
	Owners map[string][]string
	// Copies[key][node] is the node's own copy: a value, Absent, or Unread.
	Copies map[string]map[string]int64
}

// Special values of Checkpoint.Copies.
const (
	Absent int64 = 0  // the node does not hold the key
	Unread int64 = -1 // the node did not answer
)

// Log collects operations from concurrent clients.
type Log struct {
	start time.Time

	mu  sync.Mutex // guards ops
	ops []Op
}

// NewLog starts the run's clock.
func NewLog() *Log { return &Log{start: time.Now()} }

// Now is the offset from the start of the run (monotonic).
func (l *Log) Now() time.Duration { return time.Since(l.start) }

// Add records op; safe for concurrent use.
func (l *Log) Add(op Op) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

// Ops returns a copy of the operations recorded so far.
func (l *Log) Ops() []Op {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Op(nil), l.ops...)
}
