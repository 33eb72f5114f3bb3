package boards

import "github.com/ocidisk/ocidisk/internal/bytesize"

// Size is a byte count written in a board file as a number of bytes or
// with a binary unit ("512", "8KiB", "128MiB", "1GiB"); "auto" is 0: sized
// to the content.
type Size = bytesize.Size
