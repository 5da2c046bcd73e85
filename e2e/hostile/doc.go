// Package hostile is shoal's adversarial suite: it starts a real node (the
// shoal binary, built once per run) and drives it over TCP the way a
// careless or hostile client would — multi-gets that are never read,
// thousands of half-sent values, endless lines, a byte a second — and
// checks from /proc that the node's memory stays within a stated budget
// and that it still answers a normal client afterwards.
//
// The package has no code outside its tests. With -compare, the same cases
// also run against Debian's memcached and the test prints both peaks side
// by side (bench/hostile.sh); the README's table comes from there.
package hostile
