package main

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
)

// loadPasswords reads a password file as memcached's MEMCACHED_SASL_PWDB:
// one "user:password" per line. It returns the check -S authenticates
// with.
func loadPasswords(path string) (func(user, password []byte) bool, error) {
	if path == "" {
		return nil, errors.New("-S needs a password file: set MEMCACHED_SASL_PWDB to a file of user:password lines")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sasl password file: %w", err)
	}
	defer f.Close()
	users := make(map[string]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		user, pass, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			continue
		}
		users[user] = pass
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sasl password file: %w", err)
	}
	return func(user, password []byte) bool {
		want, ok := users[string(user)]
		return ok && subtle.ConstantTimeCompare([]byte(want), password) == 1
	}, nil
}
