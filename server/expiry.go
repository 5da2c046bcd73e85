package server

// maxRelative is memcached's REALTIME_MAXDELTA: exptimes up to 30 days are
// relative to now, larger ones are absolute unix times.
const maxRelative = 60 * 60 * 24 * 30

// absExptime converts an exptime as a client sends it to the absolute unix
// time the store expects (0 = never), the way memcached's realtime() does:
// negative means already expired, up to 30 days is relative, beyond is an
// absolute time (one in the past is already expired).
func absExptime(now, exptime int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return 1
	case exptime > maxRelative:
		if exptime <= now {
			return 1
		}
		return exptime
	default:
		return now + exptime
	}
}

// ttlLeft is the remaining lifetime meta commands report with t: -1 for an
// item that never expires.
func ttlLeft(now, exptime int64) int64 {
	if exptime == 0 {
		return -1
	}
	if exptime <= now {
		return 0
	}
	return exptime - now
}
