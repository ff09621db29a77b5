// The real node's sandbox ("pause") image: the process that holds a pod's namespaces open.
// It waits for SIGINT or SIGTERM and reaps any child that is re-parented to it (it is PID 1 of
// pods that share their process namespace). A static Go binary, so the image is FROM scratch.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
