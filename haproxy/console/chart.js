// Bar charts drawn as inline SVG (no library): two series per category, each scaled to its
// own maximum, values written above the bars. The table beside the chart holds the same
// numbers for screen readers; the SVG carries a title and a summary.
const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
	const e = document.createElementNS(NS, tag);
	for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
	if (text !== undefined) e.textContent = text;
	return e;
}

function fmt(v) {
	if (Number.isInteger(v)) return String(v);
	return v < 0.01 ? v.toExponential(1) : v.toFixed(4);
}

// points: [{label, a, b}]; names: {a, b, title}.
export function barChart(container, points, names) {
	container.replaceChildren();
	if (!points.length) return;
	const n = Math.min(points.length, 60);
	const pts = points.slice(0, n);
	const slot = 90, bar = 30, h = 200, top = 20, bottom = 46, left = 10;
	const w = Math.max(left + n * slot + 10, 280);
	const maxA = Math.max(...pts.map((p) => p.a), 1e-12);
	const maxB = Math.max(...pts.map((p) => p.b), 1e-12);
	const plot = h - top - bottom;
	const root = svg('svg', { viewBox: `0 0 ${w} ${h + 24}`, width: w, height: h + 24, role: 'img',
		'aria-labelledby': 'chart-title chart-desc' });
	root.append(svg('title', { id: 'chart-title' }, names.title));
	root.append(svg('desc', { id: 'chart-desc' }, pts.map((p) => `${p.label}: ${fmt(p.a)} ${names.a}, ${fmt(p.b)} ${names.b}`).join('; ')));
	root.append(svg('line', { class: 'axis', x1: left, y1: top + plot, x2: w - 10, y2: top + plot }));
	pts.forEach((p, i) => {
		const x = left + i * slot + 12;
		const ha = (p.a / maxA) * plot, hb = (p.b / maxB) * plot;
		root.append(svg('rect', { class: 'bar', x, y: top + plot - ha, width: bar, height: ha }));
		root.append(svg('rect', { class: 'bar2', x: x + bar + 4, y: top + plot - hb, width: bar, height: hb }));
		root.append(svg('text', { x: x + bar / 2, y: top + plot - ha - 3, 'text-anchor': 'middle' }, fmt(p.a)));
		root.append(svg('text', { x: x + bar * 1.5 + 4, y: top + plot - hb - 3, 'text-anchor': 'middle' }, fmt(p.b)));
		const label = p.label.length > 14 ? `${p.label.slice(0, 13)}…` : p.label;
		root.append(svg('text', { x: x + bar + 2, y: top + plot + 14, 'text-anchor': 'middle' }, label));
	});
	const ly = h + 12;
	root.append(svg('rect', { class: 'bar', x: left, y: ly - 9, width: 10, height: 10 }));
	root.append(svg('text', { x: left + 14, y: ly }, names.a));
	root.append(svg('rect', { class: 'bar2', x: left + 110, y: ly - 9, width: 10, height: 10 }));
	root.append(svg('text', { x: left + 124, y: ly }, names.b));
	container.append(root);
}
