package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// modulesList names the modules to load, one path a line, in load order;
// bootfs writes it.
const modulesList = "/etc/ocidisk/modules"

// loadModules loads every module the list names, in order, and returns
// how many it loaded and the modules that found no device (see
// noDevice). A module that is already loaded is fine; any other error
// stops the boot.
func loadModules(list string) (int, []string, error) {
	f, err := os.Open(list)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, nil // a kernel with the drivers built in
	}
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	n := 0
	var skipped []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		err := loadModule(p)
		switch {
		case noDevice(err):
			skipped = append(skipped, moduleBase(p))
			continue
		case err != nil:
			return n, skipped, err
		}
		n++
	}
	return n, skipped, sc.Err()
}

func loadModule(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if err == unix.ENOSYS {
		var b []byte
		if b, err = os.ReadFile(p); err == nil {
			err = unix.InitModule(b, "")
		}
	}
	if err != nil && err != unix.EEXIST {
		return fmt.Errorf("load module %s: %w", p, err)
	}
	return nil
}
