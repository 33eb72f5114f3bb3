package initramfs

// The init binaries are committed (DESIGN decision 5) so that go install
// users get a working tool; TestInitBinariesUpToDate rebuilds them with
// these very lines and fails when they differ. -buildvcs=false and
// -buildid= keep the commit and build cache out of the bytes; GOARM=6 runs
// on every 32-bit Pi.

//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=arm64 GOFLAGS= go build -trimpath -buildvcs=false "-ldflags=-s -w -buildid=" -o init-arm64 ./init
//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 GOFLAGS= go build -trimpath -buildvcs=false "-ldflags=-s -w -buildid=" -o init-arm ./init
