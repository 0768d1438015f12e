// Command udptool is a tiny UDP echo server and client used by the nettest
// tests, to check BuildBinary and traffic between namespaces.
//
//	udptool echo PORT          print "READY", then echo every datagram back
//	udptool send ADDRPORT DATA send DATA and print the reply
package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "udptool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "echo":
		port, err := strconv.ParseUint(args[1], 10, 16)
		if err != nil {
			return err
		}
		c, err := net.ListenUDP("udp6", &net.UDPAddr{Port: int(port)})
		if err != nil {
			return err
		}
		fmt.Println("READY")
		buf := make([]byte, 2048)
		for {
			n, src, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return err
			}
			fmt.Printf("GOT %s %s\n", src, buf[:n])
			if _, err := c.WriteToUDPAddrPort(buf[:n], src); err != nil {
				return err
			}
		}
	case len(args) == 3 && args[0] == "send":
		dst, err := netip.ParseAddrPort(args[1])
		if err != nil {
			return err
		}
		c, err := net.ListenUDP("udp6", nil)
		if err != nil {
			return err
		}
		if _, err := c.WriteToUDPAddrPort([]byte(args[2]), dst); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 2048)
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		fmt.Printf("REPLY %s from %s\n", buf[:n], src)
		return nil
	}
	return fmt.Errorf("usage: udptool echo PORT | udptool send ADDRPORT DATA")
}
