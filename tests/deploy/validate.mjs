#!/usr/bin/env node
// Validates rendered Kubernetes manifests (the output of `kubectl kustomize`), offline:
//   1. every object against its schema: the Kubernetes API schemas of kubernetes-models
//      (types, required fields, enumerations, formats) and, for the Prometheus Operator's
//      PodMonitor and ServiceMonitor, @kubernetes-models/prometheus-operator. An object of a
//      kind with no schema here is an error, never skipped;
//   2. the references between objects that no schema sees: volumes and the ConfigMaps and
//      Secrets they name, volume mounts, probe, Service, NetworkPolicy and PodMonitor port
//      names, selectors that select the pods, the HorizontalPodAutoscaler's target, CPU
//      requests where the autoscaler scales on CPU, images named by the overlay.
//
//   node tests/deploy/validate.mjs RENDERED.yaml [LABEL]
// Prints "ok LABEL: KIND/NAME" or "not ok LABEL: KIND/NAME: reason" per check; exits 1 on any
// failure.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const [file, label = file] = process.argv.slice(2);
if (!file) {
	console.error('usage: validate.mjs RENDERED.yaml [LABEL]');
	process.exit(2);
}

let failures = 0;
function report(ok, what, why) {
	if (ok) console.log(`ok ${label}: ${what}`);
	else {
		failures++;
		console.log(`not ok ${label}: ${what}: ${why}`);
	}
}

// apiVersion -> module holding one class per kind.
function modulePath(apiVersion, kind) {
	if (apiVersion.startsWith('monitoring.coreos.com/')) {
		return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
	}
	return `kubernetes-models/${apiVersion}/${kind}`;
}

async function schemaCheck(obj) {
	const what = `${obj.kind}/${obj.metadata?.name} schema`;
	let mod;
	try {
		mod = await import(modulePath(obj.apiVersion, obj.kind));
	} catch {
		report(false, what, `no schema for ${obj.apiVersion} ${obj.kind}`);
		return;
	}
	const Model = mod[obj.kind];
	// kustomize folds a Secret's base64 values over several lines; the API server's decoder
	// skips the newlines, the schema's "byte" format does not.
	if (obj.kind === 'Secret' && obj.data) {
		obj = { ...obj, data: Object.fromEntries(Object.entries(obj.data).map(([k, v]) => [k, String(v).replace(/\s+/g, '')])) };
	}
	try {
		new Model(obj).validate();
		report(true, what);
	} catch (e) {
		report(false, what, (e.message || String(e)).replace(/\s+/g, ' ').slice(0, 500));
	}
}

const docs = parseAllDocuments(readFileSync(file, 'utf8'));
const objects = [];
for (const d of docs) {
	if (d.errors.length) {
		report(false, 'YAML', d.errors[0].message);
		continue;
	}
	const o = d.toJSON();
	if (o) objects.push(o);
}
report(objects.length > 0, 'objects rendered', 'none');

for (const o of objects) await schemaCheck(o);

// ---- references between objects -------------------------------------------------------

const byKind = (k) => objects.filter((o) => o.kind === k);
const named = (k, n) => objects.find((o) => o.kind === k && o.metadata?.name === n);
const matches = (selector, labels) =>
	Object.entries(selector || {}).every(([k, v]) => labels?.[k] === v);

// Every pod template: workloads and their labels, container ports by name.
const workloads = objects.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind));
const podLabels = workloads.map((w) => w.spec.template.metadata?.labels || {});
function portsOf(w) {
	const names = new Set();
	for (const c of w.spec.template.spec.containers) for (const p of c.ports || []) if (p.name) names.add(p.name);
	return names;
}
function podsSelected(selector) {
	return workloads.filter((w) => matches(selector, w.spec.template.metadata?.labels));
}

for (const w of workloads) {
	const spec = w.spec.template.spec;
	const what = `${w.kind}/${w.metadata.name}`;
	const volumes = new Map((spec.volumes || []).map((v) => [v.name, v]));
	const ports = portsOf(w);
	if (w.kind !== 'Job') {
		report(matches(w.spec.selector?.matchLabels, w.spec.template.metadata?.labels),
			`${what} selector matches its pods`, 'it does not');
	}
	for (const [name, v] of volumes) {
		if (v.configMap) report(!!named('ConfigMap', v.configMap.name), `${what} volume ${name}`, `ConfigMap ${v.configMap.name} is not rendered`);
		if (v.secret) report(!!named('Secret', v.secret.secretName), `${what} volume ${name}`, `Secret ${v.secret.secretName} is not rendered`);
	}
	for (const c of [...(spec.initContainers || []), ...spec.containers]) {
		for (const m of c.volumeMounts || []) {
			report(volumes.has(m.name), `${what} ${c.name} mount ${m.mountPath}`, `no volume ${m.name}`);
		}
		for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
			const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
			if (typeof port === 'string') {
				report((c.ports || []).some((p) => p.name === port), `${what} ${c.name} ${probe} port ${port}`, 'no such container port');
			}
		}
		for (const e of c.env || []) {
			const ref = e.valueFrom?.secretKeyRef || e.valueFrom?.configMapKeyRef;
			if (ref) report(!!(named('Secret', ref.name) || named('ConfigMap', ref.name)), `${what} ${c.name} env ${e.name}`, `${ref.name} is not rendered`);
		}
		// The base names the image "jairouter"; every overlay must say where it is.
		report(/[/:]/.test(c.image || ''), `${what} ${c.name} image ${c.image}`, 'the overlay does not name the image (images:)');
		if (w.kind !== 'Job') {
			report(!!c.resources?.requests?.cpu, `${what} ${c.name} requests CPU`, 'no CPU request (the autoscaler needs one per container)');
		}
	}
}

for (const s of byKind('Service')) {
	const pods = podsSelected(s.spec.selector);
	report(pods.length > 0, `Service/${s.metadata.name} selects pods`, 'its selector matches no pod template');
	for (const p of s.spec.ports) {
		if (typeof p.targetPort === 'string') {
			report(pods.some((w) => portsOf(w).has(p.targetPort)), `Service/${s.metadata.name} port ${p.targetPort}`, 'no such container port');
		}
	}
}

for (const b of byKind('PodDisruptionBudget')) {
	report(podsSelected(b.spec.selector?.matchLabels).length > 0, `PodDisruptionBudget/${b.metadata.name} selects pods`, 'none');
}

for (const h of byKind('HorizontalPodAutoscaler')) {
	const t = h.spec.scaleTargetRef;
	report(!!named(t.kind, t.name), `HorizontalPodAutoscaler/${h.metadata.name} target`, `${t.kind}/${t.name} is not rendered`);
	report(h.spec.minReplicas <= h.spec.maxReplicas, `HorizontalPodAutoscaler/${h.metadata.name} bounds`, 'minReplicas > maxReplicas');
}

for (const n of byKind('NetworkPolicy')) {
	const pods = podsSelected(n.spec.podSelector?.matchLabels);
	report(pods.length > 0, `NetworkPolicy/${n.metadata.name} selects pods`, 'none');
	for (const rule of n.spec.ingress || []) {
		for (const p of rule.ports || []) {
			if (typeof p.port === 'string') {
				report(pods.every((w) => portsOf(w).has(p.port)), `NetworkPolicy/${n.metadata.name} port ${p.port}`, 'not a port of every selected pod');
			}
		}
	}
}

for (const m of byKind('PodMonitor')) {
	const pods = podsSelected(m.spec.selector?.matchLabels);
	report(pods.length > 0, `PodMonitor/${m.metadata.name} selects pods`, 'none');
	for (const e of m.spec.podMetricsEndpoints || []) {
		report(pods.some((w) => portsOf(w).has(e.port)), `PodMonitor/${m.metadata.name} port ${e.port}`, 'no such container port');
	}
}

report(podLabels.length > 0, 'pod templates rendered', 'none');
process.exit(failures ? 1 : 0);
