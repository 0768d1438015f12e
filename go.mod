module ddhcpd

go 1.23.0

require (
	github.com/insomniacslk/dhcp v0.0.0-20260407060928-11b94ed970f2
	github.com/mdlayher/packet v1.1.2
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/net v0.43.0
	golang.org/x/sys v0.35.0
)

require (
	github.com/josharian/native v1.2.0 // indirect
	github.com/mdlayher/socket v0.5.1 // indirect
	github.com/pierrec/lz4/v4 v4.1.34 // indirect
	github.com/u-root/uio v0.0.0-20240224005618-d2acac8f3701 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/sync v0.16.0 // indirect
)
