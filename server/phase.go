package server

// A connection's phase as "stats conns" shows it, in memcached's state
// names. It is a report, not a state machine: the connection sets it where
// it waits for input and where input arrives, and stats reads it from
// another goroutine.
const (
	phaseNew   uint32 = iota // accepted, nothing read yet (conn_new_cmd)
	phaseParse               // running what it read (conn_parse_cmd)
	phaseRead                // waiting for a command (conn_read)
	phaseNread               // waiting for the rest of a data block (conn_nread)
)

var phaseNames = [...]string{
	phaseNew:   "conn_new_cmd",
	phaseParse: "conn_parse_cmd",
	phaseRead:  "conn_read",
	phaseNread: "conn_nread",
}

// waitInput records, before a read, what the connection waits for. A
// connection that has read nothing stays new.
func (c *conn) waitInput() {
	switch cur := c.phase.Load(); {
	case cur == phaseNew:
	case c.r.InValue():
		c.phase.Store(phaseNread)
	default:
		c.phase.Store(phaseRead)
	}
}
