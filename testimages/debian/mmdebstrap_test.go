package debian

import (
	"slices"
	"testing"
)

func TestURIFromSources(t *testing.T) {
	const sources = `Types: deb
# a comment: with a colon
URIs: http://archive.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
`
	const firmwareOnly = "Types: deb\nURIs: http://fw.example/debian\nSuites: bookworm\nComponents: non-free-firmware\n"
	for _, tc := range []struct {
		content, suite, want string
	}{
		{sources, "bookworm", "http://archive.example/debian"},
		{sources, "bookworm-security", "http://security.example/debian-security"},
		{sources, "trixie", ""},
		{firmwareOnly, "bookworm", ""},
		{"Types: deb-src\nURIs: http://src.example\nSuites: bookworm\nComponents: main\n", "bookworm", ""},
	} {
		if got := uriFromSources(tc.content, tc.suite); got != tc.want {
			t.Errorf("uriFromSources(%.30q, %s) = %q, want %q", tc.content, tc.suite, got, tc.want)
		}
	}
}

func TestURIFromList(t *testing.T) {
	for _, tc := range []struct {
		content, suite, want string
	}{
		{"deb http://a.example/debian bookworm main contrib\n", "bookworm", "http://a.example/debian"},
		{"# deb http://x.example bookworm main\ndeb [arch=amd64,arm64 signed-by=/k.gpg] http://b.example/debian bookworm main\n", "bookworm", "http://b.example/debian"},
		{"deb-src http://a.example/debian bookworm main\n", "bookworm", ""},
		{"deb http://a.example/debian bookworm non-free-firmware\n", "bookworm", ""},
		{"deb http://a.example/debian bookworm-updates main\n", "bookworm", ""},
	} {
		if got := uriFromList(tc.content, tc.suite); got != tc.want {
			t.Errorf("uriFromList(%q, %s) = %q, want %q", tc.content, tc.suite, got, tc.want)
		}
	}
}

func TestIncludeArgs(t *testing.T) {
	for _, tc := range []struct {
		pkgs, want []string
	}{
		{[]string{"systemd", "python3"}, []string{"--include=systemd,python3"}},
		{[]string{"?essential", "?priority(required)", "apt", "sudo"},
			[]string{"--include=?essential", "--include=?priority(required)", "--include=apt,sudo"}},
		{[]string{"?essential"}, []string{"--include=?essential"}},
		{nil, nil},
	} {
		if got := includeArgs(tc.pkgs); !slices.Equal(got, tc.want) {
			t.Errorf("includeArgs(%q) = %q, want %q", tc.pkgs, got, tc.want)
		}
	}
}

// Every spec names a recipe that exists, and the boot roots share their
// packages (the extract root adds what minbase would).
func TestSpecs(t *testing.T) {
	for _, spec := range []TreeSpec{DefaultTree(), LargeTree(), SystemdRootSpec(), ExtractRootSpec()} {
		if _, err := recipeSteps(spec, &dpkgDatabase{}); err != nil {
			t.Errorf("%s: %v", spec.Name, err)
		}
	}
	if _, err := recipeSteps(TreeSpec{Name: "x", Recipe: "bogus"}, nil); err == nil {
		t.Error("an unknown recipe was accepted")
	}
	if _, err := recipeSteps(ExtractRootSpec(), nil); err == nil {
		t.Error("the unpacked recipe was accepted without a dpkg database")
	}
	for _, p := range SystemdRootSpec().Packages {
		if !slices.Contains(ExtractRootSpec().Packages, p) {
			t.Errorf("the extract root lacks the systemd root's %s", p)
		}
	}
}
