package main

import "sync/atomic"

type atomicInt = atomic.Int64
