package netio

// PollOnly returns cfg with the netlink notifications turned off, for tests
// of the periodic re-check.
func PollOnly(cfg MeshConfig) MeshConfig {
	cfg.pollOnly = true
	return cfg
}
