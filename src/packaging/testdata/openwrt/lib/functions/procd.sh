#!/bin/sh
# A stand-in for OpenWrt's /lib/functions/procd.sh, for tests: every call is
# appended to $PROCD_LOG as one line, the function name and its arguments
# separated by tabs. procd_close_service runs service_triggers first, as the
# real one does when it builds the "service set" message.

_procd_log() {
	{
		printf '%s' "$1"
		shift
		for _a in "$@"; do
			printf '\t%s' "$_a"
		done
		printf '\n'
	} >>"$PROCD_LOG"
}

procd_open_service() { _procd_log open_service "$@"; }
procd_close_service() {
	service_triggers
	_procd_log close_service "$@"
}
procd_open_instance() { _procd_log open_instance "$@"; }
procd_close_instance() { _procd_log close_instance "$@"; }
procd_set_param() { _procd_log set_param "$@"; }
procd_append_param() { _procd_log append_param "$@"; }
procd_add_reload_trigger() { _procd_log add_reload_trigger "$@"; }
procd_add_interface_trigger() { _procd_log add_interface_trigger "$@"; }
procd_add_reload_interface_trigger() { _procd_log add_reload_interface_trigger "$@"; }
procd_add_config_trigger() { _procd_log add_config_trigger "$@"; }
procd_add_raw_trigger() { _procd_log add_raw_trigger "$@"; }
procd_add_validation() { _procd_log add_validation "$@"; }
procd_send_signal() { _procd_log send_signal "$@"; }
procd_kill() { _procd_log kill "$@"; }
procd_running() { return 1; }
