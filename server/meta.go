package server

import "shoal/protocol"

// execMeta runs a meta command. Placeholder until meta support lands.
func (c *conn) execMeta(cmd protocol.Command) {
	c.line("ERROR")
}
