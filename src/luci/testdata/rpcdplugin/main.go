// Command rpcdplugin is ddhcpd's rpcd plugin alone, for the LuCI test until
// the ddhcpd binary answers "list" and "call" itself: rpcd runs it as
// "PLUGIN list" and "PLUGIN call METHOD".
package main

import (
	"os"

	"ddhcpd/src/rpcd"
)

func main() {
	os.Exit(rpcd.Main(os.Args[1:], os.Stdin, os.Stdout, ""))
}
