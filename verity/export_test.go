package verity

// For the tests of package verity_test, which build images through the
// pipeline (an importer of this package, one day).
var (
	Measure = measure
	OpenRW  = openRW
	Flip    = flip
)

type Times = times
