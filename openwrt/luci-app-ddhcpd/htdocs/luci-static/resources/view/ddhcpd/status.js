'use strict';
'require view';
'require rpc';
'require poll';

/*
 * Status of the decentralized DHCP server: this node, the blocks of the
 * pool as this node sees them (a map of the whole pool, coloured by owner,
 * and a table), its leases and the overlay tree (a drawing and a table).
 *
 * One ubus call per refresh: ddhcpd's rpcd plugin answers "overview" with
 * the daemon's status, blocks, leases and tree in one run.
 *
 * Every value shown comes from the network (hostnames from DHCP clients,
 * node ids from the mesh), so all of it goes into the page as text nodes,
 * never as HTML. The drawings are plain DOM and SVG made with E(); nothing
 * is loaded from elsewhere.
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

/*
 * Colours. Every node gets a colour of its own, the same on every router
 * and in every refresh: hue, saturation and lightness are taken from a
 * hash of its id (FNV-1a over the id's characters, then mixed as in
 * MurmurHash3's finalizer). Two nodes may still get similar colours; the
 * legend and each cell's title name the owner. C nodes all send the id 0;
 * their blocks are told apart by the owner's address instead.
 */
function hash32(s) {
	var h = 0x811c9dc5;
	for (var i = 0; i < s.length; i++) {
		h ^= s.charCodeAt(i) & 0xff;
		h = Math.imul(h, 0x01000193) >>> 0;
	}
	h ^= h >>> 16;
	h = Math.imul(h, 0x85ebca6b) >>> 0;
	h ^= h >>> 13;
	h = Math.imul(h, 0xc2b2ae35) >>> 0;
	return (h ^ (h >>> 16)) >>> 0;
}

var lightness = [ 38, 50, 62 ];

function nodeColour(key) {
	if (key == null || key === '')
		return '#999';
	var h = hash32(String(key));
	return 'hsl(' + (h % 360) + ',' + (60 + (h >>> 20) % 25) + '%,' + lightness[(h >>> 12) % 3] + '%)';
}

function isZeroID(id) {
	return /^0+$/.test(String(id || ''));
}

/* What a block's owner is known by: its id, or its address for a C node. */
function ownerKey(b) {
	if (b.owner && !isZeroID(b.owner))
		return String(b.owner);
	return b.owner_addr ? String(b.owner_addr) : (b.owner ? String(b.owner) : '');
}

function shortID(id) {
	id = String(id || '');
	return id.length > 8 ? id.substr(0, 8) : (id || '?');
}

function ownerLabel(b) {
	if (b.owner && isZeroID(b.owner))
		return _('C node') + ' ' + (b.owner_addr || b.owner);
	return b.owner;
}

/* The owner in few characters: the start of its id, a C node in full. */
function ownerShort(b) {
	return isZeroID(b.owner) ? ownerLabel(b) : shortID(b.owner);
}

/* IPv4 addresses as numbers (the pool is IPv4). */
function parseIPv4(s) {
	var m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/\d{1,2})?$/.exec(String(s || ''));
	if (!m)
		return null;
	var n = 0;
	for (var i = 1; i <= 4; i++) {
		if (+m[i] > 255)
			return null;
		n = n * 256 + (+m[i]);
	}
	return n;
}

function formatIPv4(n) {
	return [ Math.floor(n / 16777216) % 256, Math.floor(n / 65536) % 256, Math.floor(n / 256) % 256, n % 256 ].join('.');
}

/*
 * The block map: one cell per block of the pool, free ones included, in
 * rows of 32 (64 from 512 cells on, so that a /20 of blocks of 4 is 16
 * rows of one /24 each), each row labelled with its first address. A pool
 * of more than maxCells blocks is drawn with one cell for 2, 4, ... blocks
 * in a row; such a cell shows the most notable state among them.
 */
var maxCells = 2048;

var statePriority = { ours: 6, claiming: 5, tentative: 4, claimed: 3, blocked: 2, free: 1 };

var blockStateClasses = {
	ours: 'ours',
	claimed: 'claimed',
	claiming: 'tentative claiming',
	tentative: 'tentative',
	blocked: 'blocked',
	free: 'free'
};

var mapStyle = [
	'.ddhcpd-map-wrap { overflow-x: auto; margin: 6px 0 4px; }',
	'.ddhcpd-map { display: grid; gap: 2px; align-items: center; width: max-content; }',
	'.ddhcpd-map-row { font-family: monospace; font-size: 11px; opacity: .75; padding-right: 6px; text-align: right; white-space: nowrap; }',
	'.ddhcpd-cell, .ddhcpd-swatch { box-sizing: border-box; width: 12px; height: 12px; border-radius: 2px; display: inline-block; vertical-align: middle; }',
	'.ddhcpd-map.large { gap: 4px; }',
	'.ddhcpd-map.large .ddhcpd-cell { width: 22px; height: 22px; border-radius: 3px; }',
	'.ddhcpd-cell.free, .ddhcpd-swatch.free { background-color: rgba(128,128,128,.16); border: 1px solid rgba(128,128,128,.3); }',
	'.ddhcpd-cell.ours, .ddhcpd-swatch.ours { box-shadow: inset 0 0 0 2px #fff, 0 0 0 2px #111; }',
	'.ddhcpd-map.large .ddhcpd-cell.ours { box-shadow: inset 0 0 0 3px #fff, 0 0 0 2px #111; }',
	'.ddhcpd-cell.tentative, .ddhcpd-swatch.tentative { background-image: repeating-linear-gradient(135deg, rgba(255,255,255,.85) 0 2px, transparent 2px 4px); }',
	'.ddhcpd-cell.tentative:not(.claiming), .ddhcpd-swatch.tentative:not(.claiming) { background-color: #e0a000; }',
	'.ddhcpd-cell.blocked, .ddhcpd-swatch.blocked { background-color: #555; background-image: linear-gradient(45deg, transparent 42%, #ddd 42% 58%, transparent 58%); }',
	'.ddhcpd-cell:hover { outline: 2px solid #06c; outline-offset: 1px; }',
	'.ddhcpd-legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; margin-top: 8px; }',
	'.ddhcpd-legend > span { white-space: nowrap; }',
	'.ddhcpd-legend .ddhcpd-swatch { margin-right: 5px; }',
	'.ddhcpd-owners { margin-top: 4px; }',
	'.ddhcpd-tree-wrap { overflow-x: auto; margin-bottom: 10px; }',
	'.ddhcpd-tree-wrap svg { display: block; font-size: 12px; }',
	'.ddhcpd-tree-wrap text { fill: currentColor; }',
	'.ddhcpd-tree-caption { margin-bottom: 6px; }'
].join('\n');

function mapGeometry(st) {
	var n = Math.floor(Number(st.blocks)), size = Math.floor(Number(st.block_size));
	if (!isFinite(n) || n <= 0 || !isFinite(size) || size <= 0)
		return null;
	var per = 1;
	while (n / per > maxCells)
		per *= 2;
	var cells = Math.ceil(n / per);
	return {
		blocks: n,
		size: size,
		per: per,
		cells: cells,
		cols: cells > 512 ? 64 : Math.min(cells, 32),
		base: parseIPv4(st.pool)
	};
}

function blockFirst(g, index) {
	return g.base == null ? null : formatIPv4(g.base + index * g.size);
}

/* The grid of cells, made again only when the pool's shape changes. */
function buildMap(ui, g) {
	var nodes = [];
	ui.cells = [];
	for (var c = 0; c < g.cells; c++) {
		if (c % g.cols == 0)
			nodes.push(E('span', { 'class': 'ddhcpd-map-row' }, [ text(blockFirst(g, c * g.per) || String(c * g.per)) ]));
		var cell = E('span', { 'class': 'ddhcpd-cell free', 'data-index': String(c * g.per) });
		ui.cells.push(cell);
		nodes.push(cell);
	}
	var grid = E('div', {
		'class': 'ddhcpd-map' + (g.cells <= 128 ? ' large' : ''),
		'style': 'grid-template-columns: auto repeat(' + g.cols + ', max-content)',
		'data-blocks': String(g.blocks),
		'data-per-cell': String(g.per)
	}, nodes);
	replaceChildren(ui.map, [ grid ]);
	ui.mapKey = [ g.blocks, g.size, g.per, g.cols, g.base ].join('/');
}

function cellTitle(g, first, b, self) {
	var lines = [];
	var last = Math.min(first + g.per, g.blocks) - 1;
	if (g.per == 1)
		lines.push(_('Block') + ' ' + first);
	else
		lines.push(_('Blocks') + ' ' + first + '-' + last);
	if (g.base != null)
		lines.push(formatIPv4(g.base + first * g.size) + ' - ' + formatIPv4(g.base + (last + 1) * g.size - 1));
	if (!b.length) {
		lines.push(_('free'));
		return lines.join('\n');
	}
	if (g.per == 1) {
		b = b[0];
		lines.push(blockStates[b.state] || b.state);
		if (b.owner)
			lines.push(_('Owner') + ': ' + ownerLabel(b) + ((b.state == 'ours' || b.owner == self) ? ' (' + _('this node') + ')' : ''));
		if (b.owner_addr)
			lines.push(_('Owner address') + ': ' + b.owner_addr);
		if (b.timeout > 0)
			lines.push(_('Timeout') + ': ' + duration(b.timeout));
		return lines.join('\n');
	}
	var counts = {};
	b.forEach(function(x) {
		var k = (blockStates[x.state] || x.state) + (x.state == 'claimed' && x.owner ? ' (' + ownerShort(x) + ')' : '');
		counts[k] = (counts[k] || 0) + 1;
	});
	Object.keys(counts).forEach(function(k) { lines.push(counts[k] + ' ' + k); });
	if (g.per - b.length > 0)
		lines.push((Math.min(first + g.per, g.blocks) - first - b.length) + ' ' + _('free'));
	return lines.join('\n');
}

/* Fills the cells from the blocks that are not free. Returns the owners seen. */
function updateMap(ui, st, blocks) {
	var g = mapGeometry(st);
	if (!g) {
		ui.mapKey = null;
		ui.cells = [];
		replaceChildren(ui.map, [ placeholder(_('No information available')) ]);
		replaceChildren(ui.legend, []);
		return;
	}
	if (ui.mapKey != [ g.blocks, g.size, g.per, g.cols, g.base ].join('/'))
		buildMap(ui, g);

	var self = st.node, inCell = [], owners = {}, order = [];
	blocks.forEach(function(b) {
		var i = Math.floor(Number(b.index));
		if (!isFinite(i) || i < 0 || i >= g.blocks)
			return;
		var c = Math.floor(i / g.per);
		(inCell[c] = inCell[c] || []).push(b);
		if (b.state == 'ours' || b.state == 'claimed') {
			var k = b.state == 'ours' ? String(self || b.owner || '') : ownerKey(b);
			if (!owners[k]) {
				var mine = b.state == 'ours' || (self && b.owner == self);
				owners[k] = {
					key: k,
					self: !!mine,
					label: mine ? (self || b.owner) : ownerLabel(b),
					short: mine ? shortID(self || b.owner) + ' (' + _('this node') + ')' : ownerShort(b),
					count: 0
				};
				order.push(owners[k]);
			}
			owners[k].count++;
		}
	});

	for (var c = 0; c < g.cells; c++) {
		var bs = inCell[c] || [], top = null, byOwner = {}, colourKey = null, most = 0;
		bs.forEach(function(b) {
			if (!top || (statePriority[b.state] || 0) > (statePriority[top.state] || 0))
				top = b;
		});
		var state = top ? (blockStateClasses[top.state] ? top.state : 'claimed') : 'free';
		if (state == 'ours' || state == 'claiming')
			colourKey = String(self || top.owner || '');
		else if (state == 'claimed') {
			bs.forEach(function(b) {
				if (b.state != 'claimed')
					return;
				var k = ownerKey(b);
				byOwner[k] = (byOwner[k] || 0) + 1;
				if (byOwner[k] > most)
					most = byOwner[k], colourKey = k;
			});
		}
		var cell = ui.cells[c];
		cell.setAttribute('class', 'ddhcpd-cell ' + blockStateClasses[state]);
		cell.setAttribute('data-state', top ? String(top.state) : 'free');
		cell.setAttribute('title', cellTitle(g, c * g.per, bs, self));
		if (colourKey != null) {
			cell.setAttribute('style', 'background-color:' + nodeColour(colourKey));
			cell.setAttribute('data-owner', colourKey);
		}
		else {
			cell.removeAttribute('style');
			cell.removeAttribute('data-owner');
		}
	}

	order.sort(function(a, b) { return (b.self - a.self) || (b.count - a.count) || (a.key < b.key ? -1 : 1); });
	var ownCol = nodeColour(String(self || ''));
	var swatch = function(cls, colour, title) {
		return E('span', { 'class': 'ddhcpd-swatch ' + cls, 'style': colour ? 'background-color:' + colour : null, 'title': title || null });
	};
	replaceChildren(ui.legend, [
		E('div', { 'class': 'ddhcpd-legend' }, [
			E('span', {}, [ swatch('ours', ownCol), text(_('own block (outlined)')) ]),
			E('span', {}, [ swatch('claimed', nodeColour('example-other-node')), text(_('claimed by another node: one colour per node')) ]),
			E('span', {}, [ swatch('tentative claiming', ownCol), text(_('claiming: this node inquires')) ]),
			E('span', {}, [ swatch('tentative'), text(_('tentative: another node inquires')) ]),
			E('span', {}, [ swatch('blocked'), text(_('reserved')) ]),
			E('span', {}, [ swatch('free'), text(_('free')) ])
		]),
		E('div', { 'class': 'ddhcpd-legend ddhcpd-owners' }, order.map(function(o) {
			return E('span', { 'class': 'ddhcpd-owner', 'data-owner': o.key, 'title': String(o.label) }, [
				swatch(o.self ? 'ours' : 'claimed', nodeColour(o.key)),
				text(o.short + ': ' + o.count)
			]);
		}))
	]);
}

/*
 * The overlay tree as a drawing: the root at the top (when it is neither
 * this node nor its parent, with the hops between them), the parent, this
 * node, its children below with the size of their subtrees, and the
 * neighbours outside the tree beside it. Each node has its colour of the
 * block map.
 */
var svgNS = 'http://www.w3.org/2000/svg';

function S(tag, attrs, children) {
	return E(document.createElementNS(svgNS, tag), attrs || {}, children || []);
}

var boxW = 150, boxH = 44, gapX = 16, gapY = 44, margin = 10, maxNeighbours = 6;

function treeBox(x, y, cls, id, line2, root, tooltip) {
	var colour = nodeColour(id);
	return S('g', { 'class': 'ddhcpd-tnode ' + cls + (root ? ' root' : ''), 'data-id': String(id) }, [
		S('title', {}, [ text(tooltip) ]),
		S('rect', {
			'x': x, 'y': y, 'width': boxW, 'height': boxH, 'rx': 5,
			'fill': colour, 'fill-opacity': cls == 'self' ? 0.35 : 0.15,
			'stroke': colour, 'stroke-width': cls == 'self' ? 3 : 1.5,
			'stroke-dasharray': cls == 'neighbour' ? '4 3' : null
		}),
		S('text', { 'x': x + boxW / 2, 'y': y + 18, 'text-anchor': 'middle', 'font-weight': 'bold', 'font-family': 'monospace' }, [
			text(shortID(id))
		]),
		S('text', { 'x': x + boxW / 2, 'y': y + 35, 'text-anchor': 'middle', 'font-size': '11' }, (root
			? [ S('tspan', { 'fill': '#d4a000', 'style': 'fill:#d4a000' }, [ text('\u2605 ') ]), text(line2) ]
			: [ text(line2) ]))
	]);
}

function treeLine(x1, y1, x2, y2, dashed, cls) {
	return S('line', {
		'class': cls, 'x1': x1, 'y1': y1, 'x2': x2, 'y2': y2,
		'stroke': 'currentColor', 'stroke-opacity': dashed ? 0.45 : 0.7, 'stroke-width': 1.5,
		'stroke-dasharray': dashed ? '5 4' : null
	});
}

function treeDrawing(tree) {
	var self = String(tree.node || '');
	var valid = !!tree.valid && !!tree.root;
	var root = valid ? String(tree.root) : null;
	var parent = (isObject(tree.parent) && tree.parent.id) ? tree.parent : null;
	var children = (Array.isArray(tree.children) ? tree.children : []).filter(function(c) { return isObject(c) && c.id; });
	var inTree = {};
	inTree[self] = true;
	if (parent)
		inTree[parent.id] = true;
	children.forEach(function(c) { inTree[c.id] = true; });
	var others = (Array.isArray(tree.neighbours) ? tree.neighbours : []).filter(function(n) { return isObject(n) && n.id && !inTree[n.id]; });
	var shown = others.slice(0, maxNeighbours);
	var subtree = 1;
	children.forEach(function(c) { subtree += Math.max(Number(c.subtree) || 1, 1); });
	var depth = Number(tree.depth);
	var showRoot = valid && root != self && !(parent && parent.id == root);

	var childW = children.length * boxW + Math.max(children.length - 1, 0) * gapX;
	var cx = margin + Math.max(childW, boxW) / 2;
	var nbX = cx + boxW / 2 + 40;
	var width = Math.max(cx + boxW / 2, shown.length ? nbX + shown.length * (boxW + gapX) - gapX + (others.length > shown.length ? 70 : 0) : 0) + margin;
	var parts = [], y = margin, prevBottom = null;

	if (showRoot) {
		parts.push(treeBox(cx - boxW / 2, y, 'top', root, _('root') + (tree.size ? ', ' + tree.size + ' ' + _('nodes') : ''), true, _('Root') + ': ' + root));
		prevBottom = y + boxH;
		y += boxH + gapY;
	}
	if (parent) {
		var hops = depth - 1;
		if (prevBottom != null) {
			parts.push(treeLine(cx, prevBottom, cx, y, !(hops == 1), 'ddhcpd-tedge up'));
			if (hops > 1)
				parts.push(S('text', { 'x': cx + 8, 'y': prevBottom + gapY / 2 + 4, 'font-size': '11' }, [ text(hops + ' ' + _('hops')) ]));
		}
		var proot = valid && parent.id == root;
		parts.push(treeBox(cx - boxW / 2, y, 'parent', parent.id,
			proot ? _('root') + ', ' + _('parent') + (tree.size ? ', ' + tree.size + ' ' + _('nodes') : '') : _('parent'),
			proot, _('Parent') + ': ' + parent.id + (parent.addr ? '\n' + parent.addr : '')));
		prevBottom = y + boxH;
		y += boxH + gapY;
	}
	if (prevBottom != null)
		parts.push(treeLine(cx, prevBottom, cx, y, false, 'ddhcpd-tedge up'));
	var selfRoot = valid && root == self;
	parts.push(treeBox(cx - boxW / 2, y, 'self', self,
		(selfRoot ? _('root') + ', ' : '') + _('this node') + ', ' + _('subtree') + ' ' + (selfRoot && tree.size ? tree.size : subtree),
		selfRoot, _('This node') + ': ' + self));
	var selfY = y;
	shown.forEach(function(n, i) {
		var x = nbX + i * (boxW + gapX);
		var line2 = n.symmetric ? _('neighbour') : _('one-way neighbour');
		if (n.root && root && n.root != root)
			line2 += ', ' + _('root') + ' ' + shortID(n.root);
		parts.push(treeBox(x, y, 'neighbour', n.id, line2, false,
			_('Neighbour outside the tree') + ': ' + n.id + (Array.isArray(n.links) && n.links.length ? '\n' + n.links.join('\n') : '')));
	});
	if (shown.length)
		parts.unshift(treeLine(cx + boxW / 2, selfY + boxH / 2, nbX, selfY + boxH / 2, true, 'ddhcpd-tedge side'));
	if (others.length > shown.length)
		parts.push(S('text', { 'x': nbX + shown.length * (boxW + gapX), 'y': selfY + boxH / 2 + 4, 'font-size': '11' },
			[ text('+' + (others.length - shown.length) + ' ' + _('more')) ]));
	y += boxH;
	if (children.length) {
		var top = y + gapY, x0 = cx - childW / 2;
		children.forEach(function(c, i) {
			var x = x0 + i * (boxW + gapX);
			parts.unshift(treeLine(cx, y, x + boxW / 2, top, false, 'ddhcpd-tedge down'));
			parts.push(treeBox(x, top, 'child', c.id, _('subtree') + ' ' + (Number(c.subtree) || 1), false,
				_('Child') + ': ' + c.id + (c.addr ? '\n' + c.addr : '') + '\n' + _('nodes in its subtree') + ': ' + (Number(c.subtree) || 1)));
		});
		y = top + boxH;
	}
	var height = y + margin;
	return S('svg', {
		'id': 'ddhcpd-tree-drawing', 'width': Math.ceil(width), 'height': Math.ceil(height),
		'viewBox': '0 0 ' + Math.ceil(width) + ' ' + Math.ceil(height), 'role': 'img'
	}, parts);
}

function treeCaption(tree) {
	if (!tree.valid || !tree.root)
		return _('No tree is in force yet') + (tree.walk ? ' (' + _('walk') + ': ' + tree.walk + ')' : '') + '.';
	return _('Root') + ' ' + shortID(tree.root) + ', ' + _('epoch') + ' ' + tree.epoch + ', ' +
		tree.size + ' ' + _('nodes') + ', ' + _('this node at depth') + ' ' + tree.depth +
		(tree.walk && tree.walk != 'idle' ? ', ' + _('walk') + ': ' + tree.walk : '') + '.';
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
	return [
		E('div', { 'class': 'ddhcpd-tree-caption' }, [ text(treeCaption(tree)) ]),
		E('div', { 'class': 'ddhcpd-tree-wrap' }, [ treeDrawing(tree) ]),
		E('table', { 'class': 'table' }, keyValueRows([ [ _('Overlay'), _('on'), 'enabled' ] ].concat(pairs)))
	];
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
			_('One cell per block, row by row from the first address of the pool; hover over a cell for its block.')) ]);
		updateMap(ui, st, blocks);
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
			map: E('div', { 'id': 'ddhcpd-map', 'class': 'ddhcpd-map-wrap' }),
			legend: E('div', { 'id': 'ddhcpd-map-legend' }),
			cells: [],
			mapKey: null,
			blocks: E('table', { 'id': 'ddhcpd-blocks', 'class': 'table' }, [
				titles([ _('Block'), _('First address'), _('State'), _('Owner'), _('Owner address'), _('Timeout') ])
			]),
			leases: E('table', { 'id': 'ddhcpd-leases', 'class': 'table' }, [
				titles([ _('Address'), _('MAC address'), _('Hostname'), _('State'), _('Expires in'), _('Served') ])
			]),
			tree: E('div', { 'id': 'ddhcpd-tree' })
		};

		var page = E('div', { 'id': 'ddhcpd-status' }, [
			E('style', {}, [ mapStyle ]),
			E('h2', {}, [ text(_('Decentralized DHCP')) ]),
			E('div', { 'class': 'cbi-map-descr' }, [ text(
				_('The routers of the mesh split one address pool into blocks, claim blocks from each other and lease the addresses of their own blocks to their clients.')) ]),
			ui.error,
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ text(_('This node')) ]), ui.node ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ text(_('Blocks')) ]), ui.blocksSummary, ui.map, ui.legend ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ text(_('Overlay tree')) ]), ui.tree ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ text(_('Leases')) ]), ui.leases ]),
			E('div', { 'class': 'cbi-section' }, [
				E('h3', {}, [ text(_('Blocks that are not free')) ]),
				E('div', { 'class': 'cbi-section-descr' }, [ text(
					_('The blocks of the map above that are not free, as a list. The timeout of a block of another node is the time left until its claim expires, unless the owner refreshes it first.')) ]),
				ui.blocks
			])
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
