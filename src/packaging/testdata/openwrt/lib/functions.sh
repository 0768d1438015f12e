#!/bin/sh
# A stand-in for the UCI part of OpenWrt's /lib/functions.sh, for tests.
#
# The real config_load runs "uci export PACKAGE" and evaluates its output,
# in which "config", "option" and "list" are shell functions that store the
# values in CONFIG_<section>_<option> variables. A UCI file with quoted
# values is the same text, so this config_load sources the file from
# $UCI_CONFIG_DIR with the same three functions. The accessors behave like
# the real ones: lists also set <option>_LENGTH and <option>_ITEMn, and the
# option itself to the items joined by blanks; anonymous sections are named
# cfgN; config_get_bool knows 1/on/true/yes/enabled and their opposites.

# Variables set by eval are invisible to shellcheck (SC2154).
# shellcheck disable=SC2154

_config_vars=""

_config_set() { # _config_set SECTION OPTION VALUE
	eval "CONFIG_${1}_${2}=\$3"
	_config_vars="$_config_vars CONFIG_${1}_${2}"
}

config_load() { # config_load PACKAGE
	for _v in $_config_vars; do
		unset "$_v"
	done
	_config_vars=""
	CONFIG_SECTIONS=""
	CONFIG_NUM_SECTIONS=0
	CONFIG_SECTION=""
	_f="${UCI_CONFIG_DIR:-/etc/config}/$1"
	[ -f "$_f" ] || return 1
	# shellcheck disable=SC1090
	. "$_f"
}

config() { # config TYPE [NAME]
	CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
	CONFIG_SECTION=${2:-cfg$CONFIG_NUM_SECTIONS}
	CONFIG_SECTIONS="$CONFIG_SECTIONS $CONFIG_SECTION"
	_config_set "$CONFIG_SECTION" TYPE "$1"
}

option() { # option NAME VALUE
	_config_set "$CONFIG_SECTION" "$1" "$2"
}

list() { # list NAME VALUE
	eval "_len=\${CONFIG_${CONFIG_SECTION}_${1}_LENGTH:-0}"
	_len=$((_len + 1))
	_config_set "$CONFIG_SECTION" "${1}_ITEM$_len" "$2"
	_config_set "$CONFIG_SECTION" "${1}_LENGTH" "$_len"
	eval "_old=\${CONFIG_${CONFIG_SECTION}_${1}}"
	_config_set "$CONFIG_SECTION" "$1" "${_old:+$_old }$2"
}

# config_get VAR SECTION OPTION [DEFAULT]  |  config_get SECTION OPTION (prints)
config_get() {
	case $# in
	2) eval "printf '%s\n' \"\${CONFIG_${1}_${2}}\"" ;;
	*) eval "$1=\${CONFIG_${2}_${3}:-\$4}" ;;
	esac
}

config_get_bool() { # config_get_bool VAR SECTION OPTION [DEFAULT]
	config_get _b "$2" "$3" "$4"
	case "$_b" in
	1 | on | true | yes | enabled) _b=1 ;;
	0 | off | false | no | disabled) _b=0 ;;
	*) _b=$4 ;;
	esac
	eval "$1=\$_b"
}

config_list_foreach() { # config_list_foreach SECTION OPTION FUNCTION [ARGS...]
	[ $# -ge 3 ] || return 0
	_s=$1 _o=$2 _fn=$3
	shift 3
	eval "_n=\${CONFIG_${_s}_${_o}_LENGTH:-0}"
	_i=1
	while [ "$_i" -le "$_n" ]; do
		eval "_item=\${CONFIG_${_s}_${_o}_ITEM$_i}"
		# the callback may call config_list_foreach itself
		_fe_s=$_s _fe_o=$_o _fe_fn=$_fn _fe_i=$_i _fe_n=$_n
		"$_fn" "$_item" "$@"
		_s=$_fe_s _o=$_fe_o _fn=$_fe_fn _i=$_fe_i _n=$_fe_n
		_i=$((_i + 1))
	done
}

config_foreach() { # config_foreach FUNCTION [TYPE [ARGS...]]
	_cf_fn=$1
	_cf_type=$2
	if [ $# -ge 2 ]; then shift 2; else shift; fi
	for _cf_sec in $CONFIG_SECTIONS; do
		eval "_t=\${CONFIG_${_cf_sec}_TYPE}"
		[ -n "$_cf_type" ] && [ "$_t" != "$_cf_type" ] && continue
		"$_cf_fn" "$_cf_sec" "$@"
	done
}
