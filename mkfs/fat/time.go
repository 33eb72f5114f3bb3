package fat

import "time"

// FAT stores local time without a zone; ocidisk writes UTC, the zone Linux
// assumes with tz=UTC and the only choice that does not depend on the build
// machine. The range is 1980-01-01 to 2107-12-31 in two-second steps.
var (
	fatEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	fatEnd   = time.Date(2107, 12, 31, 23, 59, 59, 0, time.UTC)
)

// fatTime is a timestamp in directory-entry form: date, time and the
// 10-millisecond count (0-199) that refines the creation time.
type fatTime struct {
	date, time uint16
	tenth      uint8
}

func encodeTime(t time.Time) fatTime {
	t = t.UTC()
	if t.Before(fatEpoch) {
		t = fatEpoch
	}
	if t.After(fatEnd) {
		t = fatEnd
	}
	return fatTime{
		date:  uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day()),
		time:  uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2),
		tenth: uint8(t.Second()%2*100 + t.Nanosecond()/10_000_000),
	}
}

// entryTime is the time written for a node: its mtime clamped by limit (the
// SOURCE_DATE_EPOCH rule), and limit (or the FAT epoch) when the tree has no
// time for it.
func entryTime(mtime, limit time.Time) time.Time {
	switch {
	case mtime.IsZero() && limit.IsZero():
		return fatEpoch
	case mtime.IsZero():
		return limit
	case !limit.IsZero() && mtime.After(limit):
		return limit
	}
	return mtime
}
