'use strict';
'require view';
'require rpc';
'require poll';

/*
 * Status of the decentralized DHCP server: this node, the blocks of the
 * pool as this node sees them, its leases and the overlay tree.
 *
 * One ubus call per refresh: ddhcpd's rpcd plugin answers "overview" with
 * the daemon's status, blocks, leases and tree in one run.
 *
 * Every value shown comes from the network (hostnames from DHCP clients,
 * node ids from the mesh), so all of it goes into the page as text nodes,
 * never as HTML.
 */

var callOverview = rpc.declare({
	object: 'ddhcpd',
	method: 'overview',
	reject: true
});

function isObject(v) {
	return v != null && typeof(v) == 'object' && !Array.isArray(v);
}

function text(v) {
	return document.createTextNode((v == null || v === '') ? '-' : String(v));
}

function pad2(n) {
	return (n < 10 ? '0' : '') + n;
}

/* A duration in seconds as "1d 2h 03m 04s", the way LuCI writes them. */
function duration(secs) {
	secs = Math.floor(Number(secs));
	if (!isFinite(secs) || secs < 0)
		return null;
	var d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24,
	    m = Math.floor(secs / 60) % 60, s = secs % 60;
	if (d > 0)
		return d + 'd ' + h + 'h ' + pad2(m) + 'm ' + pad2(s) + 's';
	if (h > 0)
		return h + 'h ' + pad2(m) + 'm ' + pad2(s) + 's';
	if (m > 0)
		return m + 'm ' + pad2(s) + 's';
	return s + 's';
}

function fetchOverview() {
	return callOverview().then(function(reply) {
		if (!isObject(reply))
			return { error: _('Unexpected reply from the ddhcpd rpcd plugin') };
		return reply;
	}).catch(function(err) {
		return { error: (err && err.message) ? err.message : String(err) };
	});
}

var blockStates = {
	ours: _('own'),
	claimed: _('claimed'),
	claiming: _('claiming'),
	tentative: _('tentative'),
	blocked: _('reserved')
};

var blockStateHints = {
	ours: _('This node owns the block and leases its addresses.'),
	claimed: _('Another node owns the block.'),
	claiming: _('This node is inquiring whether the block is free.'),
	tentative: _('Another node is inquiring about the block.'),
	blocked: _('Every address of the block is reserved; nobody claims it.')
};

function titles(names) {
	return E('tr', { 'class': 'tr table-titles' }, names.map(function(n) {
		return E('th', { 'class': 'th' }, [ text(n) ]);
	}));
}

function placeholder(msg) {
	return E('em', {}, [ text(msg) ]);
}

function replaceChildren(node, children) {
	while (node.firstChild)
		node.removeChild(node.firstChild);
	children.forEach(function(c) { node.appendChild(c); });
}

function keyValueRows(pairs) {
	return pairs.map(function(p) {
		return E('tr', { 'class': 'tr' }, [
			E('td', { 'class': 'td left', 'width': '33%' }, [ text(p[0]) ]),
			E('td', { 'class': 'td left', 'data-name': p[2] || null }, [ text(p[1]) ])
		]);
	});
}

function nodeRows(st) {
	var mesh = (Array.isArray(st.mesh) ? st.mesh : []).map(function(i) {
		var s = i.name + ': ' + (i.up ? _('up') : _('down'));
		if (i.link_local)
			s += ', ' + i.link_local;
		if (i.error)
			s += ' (' + i.error + ')';
		return s;
	}).join('; ');
	var clients = Array.isArray(st.client_interfaces) ? st.client_interfaces.join(', ') : '';
	var dhcp = st.dhcp
		? _('serving on') + ' ' + (clients || '-') + (st.server_id ? ', ' + _('server identifier') + ' ' + st.server_id : '')
		: _('off: claiming blocks only');
	return [
		[ _('Node ID'), st.node, 'node' ],
		[ _('State'), st.learning
			? _('learning: listening to the mesh before claiming blocks')
			: _('active'), 'state' ],
		[ _('Pool'), st.pool, 'pool' ],
		[ _('Blocks'), st.blocks + ' ' + _('blocks of') + ' ' + st.block_size + ' ' + _('addresses') + '; ' +
			_('not free') + ': ' + st.tracked + ', ' + _('owned by this node') + ': ' + st.owned, 'blocks' ],
		[ _('Leases'), st.leases + ' (' + _('spare addresses kept free') + ': ' + st.spare_leases + ')', 'leases' ],
		[ _('DHCP service'), dhcp, 'dhcp' ],
		[ _('Mesh interfaces'), mesh, 'mesh' ],
		[ _('Block timeout'), duration(st.block_timeout), 'block_timeout' ],
		[ _('Uptime'), duration(st.uptime), 'uptime' ],
		[ _('Version'), st.version, 'version' ]
	];
}

function blockRows(blocks, self) {
	return blocks.map(function(b) {
		var state = E('span', { 'title': blockStateHints[b.state] || '' }, [ text(blockStates[b.state] || b.state) ]);
		var owner = text(b.owner);
		if (b.state == 'ours' || (b.owner && b.owner == self))
			owner = E('span', {}, [ text(b.owner), E('em', {}, [ text(' (' + _('this node') + ')') ]) ]);
		return [
			text(b.index),
			text(b.first),
			b.state == 'ours' ? E('strong', {}, [ state ]) : state,
			owner,
			text(b.owner_addr),
			text(b.timeout > 0 ? duration(b.timeout) : null)
		];
	});
}

function leaseRows(leases) {
	return leases.map(function(l) {
		var expires = l.expires > 0 ? duration(l.expires) : _('expired');
		var served = l.local
			? E('span', { 'title': _('in a block this node owns') }, [ text(_('local')) ])
			: E('span', { 'title': _('in a block another node owns now; renewals go to its owner') }, [ text(_('roamed')) ]);
		return [
			text(l.addr),
			text(l.hw || l.client),
			text(l.hostname),
			text(l.state),
			text(expires),
			served
		];
	});
}

function treeNodes(tree, err) {
	if (err)
		return [ E('p', {}, [ E('em', {}, [ text(_('The daemon does not report the overlay tree') + ': ' + err) ]) ]) ];
	if (!isObject(tree))
		return [ E('p', {}, [ E('em', {}, [ text(_('No information available')) ]) ]) ];
	if (!tree.enabled)
		return [ E('p', {}, [ text(_('Off. Claims travel by link-local multicast on the mesh interfaces, which reaches every node of a layer-2 mesh.')) ]) ];
	var pairs = Object.keys(tree).filter(function(k) { return k != 'enabled'; }).map(function(k) {
		var v = tree[k];
		if (Array.isArray(v))
			v = v.map(function(x) { return isObject(x) ? JSON.stringify(x) : String(x); }).join(', ');
		else if (isObject(v))
			v = JSON.stringify(v);
		return [ k, v, k ];
	});
	return [ E('table', { 'class': 'table' }, keyValueRows([ [ _('Overlay'), _('on'), 'enabled' ] ].concat(pairs))) ];
}

return view.extend({
	load: function() {
		return fetchOverview();
	},

	update: function(ui, data) {
		if (data.error) {
			/* Keep the last tables: they are stale, the banner says so. */
			replaceChildren(ui.error, [ text(_('Cannot read the status of ddhcpd') + ': ' + data.error) ]);
			ui.error.style.display = '';
			return;
		}
		ui.error.style.display = 'none';

		var st = isObject(data.status) ? data.status : {};
		var blocks = Array.isArray(data.blocks) ? data.blocks : [];
		var leases = Array.isArray(data.leases) ? data.leases : [];
		var errors = isObject(data.errors) ? data.errors : {};

		replaceChildren(ui.node, keyValueRows(nodeRows(st)));

		var own = 0, others = 0;
		blocks.forEach(function(b) {
			if (b.state == 'ours')
				own++;
			else if (b.state == 'claimed')
				others++;
		});
		var rest = blocks.length - own - others;
		replaceChildren(ui.blocksSummary, [ text(
			own + ' ' + _('own') + ', ' + others + ' ' + _('claimed by other nodes') +
			(rest > 0 ? ', ' + rest + ' ' + _('being claimed or reserved') : '') + '. ' +
			_('Free blocks are not listed. The timeout of a block of another node is the time left until its claim expires, unless the owner refreshes it first.')) ]);
		cbi_update_table(ui.blocks, blockRows(blocks, st.node),
			placeholder(errors.blocks ? errors.blocks : _('No block is claimed yet')));
		cbi_update_table(ui.leases, leaseRows(leases),
			placeholder(errors.leases ? errors.leases : _('No leases')));

		replaceChildren(ui.tree, treeNodes(data.tree, errors.tree));
	},

	render: function(data) {
		var ui = {
			error: E('div', { 'id': 'ddhcpd-error', 'class': 'alert-message warning', 'style': 'display:none' }),
			node: E('table', { 'id': 'ddhcpd-node', 'class': 'table' }),
			blocksSummary: E('div', { 'class': 'cbi-section-descr' }),
			blocks: E('table', { 'id': 'ddhcpd-blocks', 'class': 'table' }, [
				titles([ _('Block'), _('First address'), _('State'), _('Owner'), _('Owner address'), _('Timeout') ])
			]),
			leases: E('table', { 'id': 'ddhcpd-leases', 'class': 'table' }, [
				titles([ _('Address'), _('MAC address'), _('Hostname'), _('State'), _('Expires in'), _('Served') ])
			]),
			tree: E('div', { 'id': 'ddhcpd-tree' })
		};

		var page = E('div', { 'id': 'ddhcpd-status' }, [
			E('h2', {}, [ text(_('Decentralized DHCP')) ]),
			E('div', { 'class': 'cbi-map-descr' }, [ text(
				_('The routers of the mesh split one address pool into blocks, claim blocks from each other and lease the addresses of their own blocks to their clients.')) ]),
			ui.error,
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ text(_('This node')) ]), ui.node ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ text(_('Blocks')) ]), ui.blocksSummary, ui.blocks ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ text(_('Leases')) ]), ui.leases ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ text(_('Overlay tree')) ]), ui.tree ])
		]);

		cbi_update_table(ui.blocks, [], placeholder(_('No information available')));
		cbi_update_table(ui.leases, [], placeholder(_('No information available')));
		this.update(ui, data);

		poll.add(L.bind(function() {
			return fetchOverview().then(L.bind(this.update, this, ui));
		}, this));

		return page;
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
