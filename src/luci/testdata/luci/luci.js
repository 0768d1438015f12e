/*
 * A stand-in for LuCI's client-side API, for the tests of luci-app-ddhcpd
 * only. It has just what a status view needs, with LuCI's documented
 * behaviour (luci.js, rpc.js, cbi.js), including its traps:
 *
 *   L            env, bind, isObject, raise, url, require (loads a view the
 *                way LuCI does: fetches the source, reads its 'require'
 *                lines, compiles it with the required modules as arguments
 *                and instantiates the class it returns)
 *   baseclass    extend, __init__, varargs
 *   view         load() -> render(data) -> #view; footer unless the
 *                handleSave* handlers are null
 *   rpc          declare({object, method, params, expect, filter, reject}):
 *                ubus JSON-RPC "call" POSTs to L.env.ubuspath
 *   poll         add(fn, interval), start, stop, active
 *   dom, E()     dom.create/append/content/attr; a string child is set as
 *                innerHTML, as in LuCI
 *   _()          no translation
 *   cbi_update_table(table, rows, placeholder)
 *
 * For the test it marks the body: data-stub-rendered once the view is in
 * the page, data-stub-polls with the number of finished poll rounds, and
 * lists JavaScript errors in <pre id="stub-errors">.
 */
(function(window, document) {
	'use strict';

	function report(msg) {
		var pre = document.getElementById('stub-errors');
		if (!pre) {
			pre = document.createElement('pre');
			pre.id = 'stub-errors';
			document.body.appendChild(pre);
		}
		pre.appendChild(document.createTextNode(msg + '\n'));
		if (window.console)
			console.error(msg);
	}

	window.addEventListener('error', function(ev) {
		report('error: ' + ev.message + ' (' + ev.filename + ':' + ev.lineno + ')');
	});
	window.addEventListener('unhandledrejection', function(ev) {
		var r = ev.reason;
		report('unhandled rejection: ' + (r && r.stack ? r.stack : r));
	});

	/* Classes */

	function extend(props) {
		var Parent = this;
		var Class = function() {
			if (typeof(this.__init__) == 'function')
				this.__init__.apply(this, arguments);
		};
		Class.prototype = Object.create(Parent.prototype);
		for (var k in props)
			if (Object.prototype.hasOwnProperty.call(props, k))
				Class.prototype[k] = props[k];
		Class.prototype.constructor = Class;
		Class.extend = extend;
		Class.isSubclass = function(c) { return c != null && c.prototype instanceof Class; };
		return Class;
	}

	function BaseClass() {}
	BaseClass.extend = extend;
	BaseClass.prototype.varargs = function(args, offset) {
		return Array.prototype.slice.call(args, offset || 0).concat(Array.prototype.slice.call(arguments, 2));
	};

	/* DOM */

	var dom = {
		elem: function(e) {
			return e != null && typeof(e) == 'object' && 'nodeType' in e;
		},

		append: function(node, children) {
			if (!this.elem(node))
				return null;
			if (Array.isArray(children)) {
				/* As in LuCI: the check is on the array, so a null item becomes "null". */
				for (var i = 0; i < children.length; i++)
					if (this.elem(children[i]))
						node.appendChild(children[i]);
					else if (children !== null && children !== undefined)
						node.appendChild(document.createTextNode('' + children[i]));
				return node.lastChild;
			}
			if (typeof(children) == 'function')
				return this.append(node, children(node));
			if (this.elem(children))
				return node.appendChild(children);
			if (children !== null && children !== undefined) {
				node.innerHTML = '' + children;
				return node.lastChild;
			}
			return null;
		},

		content: function(node, children) {
			if (!this.elem(node))
				return null;
			while (node.firstChild)
				node.removeChild(node.firstChild);
			return this.append(node, children);
		},

		attr: function(node, key, val) {
			var attr = null;
			if (typeof(key) == 'object' && key !== null)
				attr = key;
			else if (typeof(key) == 'string')
				attr = {}, attr[key] = val;
			for (key in attr) {
				if (!Object.prototype.hasOwnProperty.call(attr, key) || attr[key] == null)
					continue;
				switch (typeof(attr[key])) {
				case 'function':
					node.addEventListener(key, attr[key]);
					break;
				case 'object':
					node.setAttribute(key, JSON.stringify(attr[key]));
					break;
				default:
					node.setAttribute(key, attr[key]);
				}
			}
		},

		parse: function(html) {
			var t = document.createElement('template');
			t.innerHTML = html;
			return t.content.firstChild;
		},

		create: function() {
			var html = arguments[0], attr = arguments[1], data = arguments[2], elem;
			/* As in LuCI: anything that is not a plain object here (a Node is one!) is taken as attributes. */
			if (!(attr instanceof Object) || Array.isArray(attr))
				data = attr, attr = null;
			if (Array.isArray(html)) {
				elem = document.createDocumentFragment();
				for (var i = 0; i < html.length; i++)
					elem.appendChild(this.create(html[i]));
			}
			else if (this.elem(html))
				elem = html;
			else if (html.charCodeAt(0) === 60)
				elem = this.parse(html);
			else
				elem = document.createElement(html);
			if (!elem)
				return null;
			this.attr(elem, attr);
			this.append(elem, data);
			return elem;
		}
	};

	window.E = function() { return dom.create.apply(dom, arguments); };
	window._ = function(s) { return s; };

	/* L */

	var env = window.stubEnv || {};
	var L = window.L = {
		env: {
			pollinterval: env.pollinterval || 5,
			sessionid: env.sessionid || '00000000000000000000000000000000',
			ubuspath: env.ubuspath || '/ubus/',
			resource: env.resource || '/luci-static/resources',
			scriptname: env.scriptname || '/cgi-bin/luci'
		},
		dom: dom,

		bind: function(fn, self) {
			return Function.prototype.bind.apply(fn, [ self ].concat(Array.prototype.slice.call(arguments, 2)));
		},

		isObject: function(v) {
			return v != null && typeof(v) == 'object';
		},

		raise: function(type, fmt) {
			var args = Array.prototype.slice.call(arguments, 2), i = 0;
			var msg = String(fmt).replace(/%[sd]/g, function() { return String(args[i++]); });
			var e = new Error(msg);
			e.name = type;
			throw e;
		},

		url: function() {
			return [ L.env.scriptname ].concat(Array.prototype.slice.call(arguments)).join('/');
		},

		resource: function() {
			return [ L.env.resource ].concat(Array.prototype.slice.call(arguments)).join('/');
		}
	};

	/* poll: one timer per function, the next round after the last finished. */

	var pollRounds = 0;
	var poll = {
		queue: [],
		running: false,

		add: function(fn, interval) {
			if (interval == null || interval <= 0)
				interval = L.env.pollinterval;
			if (typeof(fn) != 'function' || isNaN(interval))
				throw new TypeError('Invalid argument to poll.add()');
			for (var i = 0; i < this.queue.length; i++)
				if (this.queue[i].fn === fn)
					return false;
			var e = { fn: fn, interval: interval, timer: null };
			this.queue.push(e);
			if (this.running)
				this.schedule(e);
			return true;
		},

		schedule: function(e) {
			var self = this;
			e.timer = window.setTimeout(function() {
				Promise.resolve().then(e.fn).catch(function(err) {
					report('poll function failed: ' + (err && err.stack ? err.stack : err));
				}).then(function() {
					pollRounds++;
					document.body.setAttribute('data-stub-polls', String(pollRounds));
					if (self.running)
						self.schedule(e);
				});
			}, e.interval * 1000);
		},

		start: function() {
			if (this.running)
				return false;
			this.running = true;
			for (var i = 0; i < this.queue.length; i++)
				this.schedule(this.queue[i]);
			return true;
		},

		stop: function() {
			this.running = false;
			for (var i = 0; i < this.queue.length; i++)
				window.clearTimeout(this.queue[i].timer);
			return true;
		},

		active: function() {
			return this.running;
		}
	};

	/* rpc: ubus over JSON-RPC, replies handled as rpc.js does. */

	var rpcRequestID = 1;
	var Rpc = BaseClass.extend({
		call: function(msg) {
			var url = L.env.ubuspath.replace(/\/$/, '') + '/' + msg.params[1] + '.' + msg.params[2];
			return window.fetch(url, {
				method: 'POST',
				headers: { 'Content-Type': 'application/json' },
				body: JSON.stringify(msg)
			});
		},

		handleReply: function(req, res) {
			if (!res.ok)
				L.raise('RPCError', 'RPC call to %s/%s failed with HTTP error %d: %s',
					req.object, req.method, res.status, res.statusText || '?');
			return res.json().then(function(msg) {
				if (!L.isObject(msg) || msg.jsonrpc != '2.0')
					L.raise('RPCError', 'RPC call to %s/%s returned invalid message frame', req.object, req.method);
				if (L.isObject(msg.error) && msg.error.code && msg.error.message)
					L.raise('RPCError', 'RPC call to %s/%s failed with error %d: %s',
						req.object, req.method, msg.error.code, msg.error.message);
				var ret = null;
				if (Array.isArray(msg.result)) {
					if (req.raise && msg.result[0] !== 0)
						L.raise('RPCError', 'RPC call to %s/%s failed with ubus code %d',
							req.object, req.method, msg.result[0]);
					ret = (msg.result.length > 1) ? msg.result[1] : msg.result[0];
				}
				if (req.expect) {
					var type = Object.prototype.toString;
					for (var key in req.expect) {
						if (ret != null && key != '')
							ret = ret[key];
						if (ret == null || type.call(ret) != type.call(req.expect[key]))
							ret = req.expect[key];
						break;
					}
				}
				if (typeof(req.filter) == 'function') {
					req.priv[0] = ret;
					req.priv[1] = req.params;
					ret = req.filter.apply(null, req.priv);
				}
				return ret;
			});
		},

		declare: function(options) {
			var rpc = this;
			return function() {
				var args = Array.prototype.slice.call(arguments);
				var params = {}, p = 0;
				if (Array.isArray(options.params))
					for (; p < options.params.length; p++)
						params[options.params[p]] = args[p];
				var priv = [ undefined, undefined ].concat(args.slice(p));
				var req = {
					object: options.object, method: options.method, expect: options.expect,
					filter: options.filter, raise: options.reject, params: params, priv: priv
				};
				var msg = {
					jsonrpc: '2.0',
					id: rpcRequestID++,
					method: 'call',
					params: [ L.env.sessionid, options.object, options.method, params ]
				};
				return rpc.call(msg).then(function(res) { return rpc.handleReply(req, res); });
			};
		}
	});

	/* view */

	var View = BaseClass.extend({
		__init__: function() {
			var vp = document.getElementById('view');
			dom.content(vp, E('div', { 'class': 'spinning' }, 'Loading view…'));
			return Promise.resolve(this.load())
				.then(L.bind(this.render, this))
				.then(L.bind(function(nodes) {
					dom.content(vp, nodes);
					dom.append(vp, this.addFooter());
					document.body.setAttribute('data-stub-rendered', '1');
					poll.start();
				}, this))
				.catch(function(err) {
					dom.content(vp, E('div', { 'class': 'alert-message error' }, [ 'Error: ' + (err && err.message) ]));
					report('view failed: ' + (err && err.stack ? err.stack : err));
				});
		},

		load: function() {},
		render: function() {},

		addFooter: function() {
			if (this.handleSave === null && this.handleSaveApply === null && this.handleReset === null)
				return E([]);
			return E('div', { 'class': 'cbi-page-actions' }, [
				E('button', { 'class': 'cbi-button' }, [ 'Save & Apply' ]),
				E('button', { 'class': 'cbi-button' }, [ 'Save' ]),
				E('button', { 'class': 'cbi-button' }, [ 'Reset' ])
			]);
		},

		handleSave: function() {},
		handleSaveApply: function() {},
		handleReset: function() {}
	});

	/* Modules by name, as 'require NAME' gets them: classes for baseclass
	 * and view, instances for the others. */
	var modules = {
		baseclass: BaseClass,
		view: View,
		dom: dom,
		poll: poll,
		rpc: new Rpc()
	};

	/* The prologue of a module: 'use strict' and 'require NAME [as ALIAS]'. */
	function requires(source) {
		var deps = [], lines = source.split('\n');
		for (var i = 0; i < lines.length; i++) {
			var line = lines[i].trim();
			if (line == '' || line.indexOf('//') == 0)
				continue;
			var m = /^(['"])(.*)\1;?$/.exec(line);
			if (!m)
				break;
			var r = /^require\s+(\S+)(?:\s+as\s+(\S+))?$/.exec(m[2]);
			if (r)
				deps.push({ name: r[1], as: r[2] || r[1].replace(/\./g, '_') });
		}
		return deps;
	}

	L.require = function(name) {
		if (modules[name])
			return Promise.resolve(modules[name]);
		var url = L.env.resource + '/' + name.replace(/\./g, '/') + '.js';
		return window.fetch(url).then(function(res) {
			if (!res.ok)
				throw new Error('cannot load ' + url + ': HTTP ' + res.status);
			return res.text();
		}).then(function(source) {
			var deps = requires(source);
			return Promise.all(deps.map(function(d) { return L.require(d.name); })).then(function(instances) {
				var factory = new Function([ 'window', 'document', 'L' ].concat(deps.map(function(d) { return d.as; })).join(', '),
					source + '\n//# sourceURL=' + url);
				var Class = factory.apply(factory, [ window, document, L ].concat(instances));
				if (typeof(Class) != 'function' || !(Class.prototype instanceof BaseClass))
					throw new TypeError(name + ' does not return a class');
				modules[name] = new Class();
				return modules[name];
			});
		});
	};

	/* cbi.js */

	window.cbi_update_table = function(table, data, placeholder) {
		var target = dom.elem(table) ? table : document.querySelector(table);
		if (!dom.elem(target))
			return;
		target.querySelectorAll('.tr.table-titles, .cbi-section-table-titles').forEach(function(thead) {
			var titles = [];
			thead.querySelectorAll('.th').forEach(function(th) { titles.push(th); });
			if (!Array.isArray(data))
				return;
			var n = 0, rows = target.querySelectorAll('.tr');
			data.forEach(function(row) {
				var trow = E('tr', { 'class': 'tr' });
				for (var i = 0; i < titles.length; i++) {
					var text = (titles[i].innerText || titles[i].textContent || '').trim();
					var td = trow.appendChild(E('td', {
						'class': titles[i].className,
						'data-title': (text !== '') ? text : null
					}, row[i] || ''));
					td.classList.remove('th');
					td.classList.add('td');
				}
				trow.classList.add('cbi-rowstyle-' + ((n++ % 2) ? 2 : 1));
				if (rows[n])
					target.replaceChild(trow, rows[n]);
				else
					target.appendChild(trow);
			});
			while (rows[++n])
				target.removeChild(rows[n]);
			if (placeholder && target.firstElementChild === target.lastElementChild) {
				var prow = target.appendChild(E('tr', { 'class': 'tr placeholder' }));
				var ptd = prow.appendChild(E('td', { 'class': titles[0].className }, placeholder));
				ptd.classList.remove('th');
				ptd.classList.add('td');
				ptd.setAttribute('colspan', String(titles.length));
			}
		});
	};

	/* The page calls L.boot(viewPath) as LuCI's view template does
	 * ui.instantiateView(path). */
	L.boot = function(path) {
		return L.require('view.' + path.replace(/\//g, '.')).catch(function(err) {
			report('cannot load view ' + path + ': ' + (err && err.stack ? err.stack : err));
		});
	};
})(window, document);
