package debian

import "syscall"

type syscallStat = syscall.Stat_t
