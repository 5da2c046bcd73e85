package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// daemonEnv marks the process -d started in the background.
const daemonEnv = "SHOAL_DAEMONIZED"

// daemonize implements memcached's -d: when args ask for it, the command
// starts itself again in a new session, detached from the terminal, and
// reports true (the caller exits); the background copy runs the node.
// Go cannot fork a running runtime, so this is a re-exec, not a fork.
func daemonize(args []string) bool {
	o, err := parseFlags(args)
	if err != nil || !o.daemon || os.Getenv(daemonEnv) != "" {
		return false
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoal: -d:", err)
		os.Exit(71)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoal: -d:", err)
		os.Exit(71)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "shoal: -d:", err)
		os.Exit(71)
	}
	return true
}
