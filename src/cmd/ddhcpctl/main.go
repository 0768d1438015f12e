// Command ddhcpctl queries a running ddhcpd over its control socket.
package main

import (
	"os"

	"ddhcpd/src/ctl"
)

func main() { os.Exit(ctl.Main(os.Args[1:], os.Stdout, os.Stderr)) }
