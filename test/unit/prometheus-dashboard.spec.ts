// The observability profile's files, checked without Docker: the Grafana dashboard queries only series
// the collector registers (with their labels), shows every one of them, and the compose profile, the
// Prometheus scrape config and the Grafana provisioning agree on names, paths and ports.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { collectCacheMetrics } from 'nestjs-redis-cache/prometheus';

// js-yaml comes with jest (istanbul's config loader); it is only read here, to parse YAML.
const { safeLoad } = createRequire(import.meta.url)('js-yaml') as { safeLoad(text: string): unknown };

const ROOT = join(import.meta.dirname, '../..');
const OBSERVABILITY = join(ROOT, 'tools/observability');
const readYaml = <T>(path: string): T => safeLoad(readFileSync(join(ROOT, path), 'utf8')) as T;

interface Target {
  expr: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
}

const dashboard = JSON.parse(
  readFileSync(join(OBSERVABILITY, 'grafana/dashboards/nestjs-redis-cache.json'), 'utf8'),
) as Dashboard;
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const queryPanels = panels.filter((panel) => panel.type !== 'row');
const exprs = queryPanels.flatMap((panel) => (panel.targets ?? []).map(({ expr }) => expr));
const variableQueries = dashboard.templating.list
  .filter(({ type }) => type === 'query')
  .map(({ query }) => (query as { query: string }).query);

/** Every series name a query can use (histograms as their _bucket, _sum, _count), with its labels. */
async function registeredSeries(): Promise<Map<string, string[]>> {
  const registry = new Registry();
  const collector = collectCacheMetrics({ registry });
  try {
    const series = new Map<string, string[]>();
    for (const metric of registry.getMetricsAsArray() as unknown as {
      name: string;
      type: string;
      labelNames: string[];
    }[]) {
      if (metric.type !== 'histogram') {
        series.set(metric.name, metric.labelNames);
        continue;
      }
      series.set(`${metric.name}_bucket`, [...metric.labelNames, 'le']);
      series.set(`${metric.name}_sum`, metric.labelNames);
      series.set(`${metric.name}_count`, metric.labelNames);
    }
    return series;
  } finally {
    collector.stop();
  }
}

const SERIES_NAME = /\bnestjs_redis_cache_[a-z0-9_]+/g;

describe('Grafana dashboard', () => {
  let series: Map<string, string[]>;
  beforeAll(async () => {
    series = await registeredSeries();
  });

  it('queries only series the collector registers, and every query names one', () => {
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of [...exprs, ...variableQueries]) {
      const names = expr.match(SERIES_NAME) ?? [];
      expect({ expr, names: names.length > 0 }).toEqual({ expr, names: true });
      for (const name of names)
        expect({ expr, name, registered: series.has(name) }).toEqual({ expr, name, registered: true });
    }
  });

  it("filters and groups only by the queried series' labels", () => {
    for (const expr of [...exprs, ...variableQueries]) {
      const used = new Set((expr.match(SERIES_NAME) ?? []).flatMap((name) => series.get(name) ?? []));
      const selectors = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap(([, inside]) =>
        [...inside.matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)].map(([, label]) => label),
      );
      const groupings = [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap(([, list]) => list.split(/,\s*/));
      for (const label of [...selectors, ...groupings]) {
        expect({ expr, label, known: used.has(label) }).toEqual({ expr, label, known: true });
      }
    }
  });

  it('shows every series the collector registers', () => {
    const queried = new Set(exprs.flatMap((expr) => expr.match(SERIES_NAME) ?? []));
    const shown = (name: string) =>
      queried.has(name) || ['_bucket', '_sum', '_count'].some((suffix) => queried.has(name + suffix));
    const metrics = [...series.keys()].map((name) => name.replace(/_(bucket|sum|count)$/, ''));
    for (const metric of new Set(metrics)) expect({ metric, shown: shown(metric) }).toEqual({ metric, shown: true });
  });

  it('has panels with unique ids inside the 24-column grid, on the datasource variable', () => {
    const ids = panels.map(({ id }) => id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels) expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
    for (const panel of queryPanels) {
      expect(panel.targets?.length).toBeGreaterThan(0);
      expect(panel.datasource?.uid).toBe('${datasource}');
    }
    expect(dashboard.templating.list.map(({ name }) => name)).toEqual(['datasource', 'cache', 'name']);
  });
});

interface ComposeService {
  image?: string;
  profiles?: string[];
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
}

describe('docker-compose observability profile', () => {
  const compose = readYaml<{ services: Record<string, ComposeService> }>('docker-compose.yml');
  const { prometheus, grafana } = compose.services;
  const mounts = (service: ComposeService) =>
    (service.volumes ?? []).map((volume) => {
      const [source, target] = volume.split(':');
      return { source, target };
    });

  it('adds Prometheus and Grafana under the profile, leaving the default services without one', () => {
    expect(prometheus.profiles).toEqual(['observability']);
    expect(grafana.profiles).toEqual(['observability']);
    expect(compose.services.redis.profiles).toBeUndefined();
    expect(compose.services['sample-app'].profiles).toBeUndefined();
  });

  it('mounts files and folders that exist in the repository', () => {
    for (const { source } of [...mounts(prometheus), ...mounts(grafana)]) {
      expect({ source, exists: existsSync(join(ROOT, source)) }).toEqual({ source, exists: true });
    }
  });

  it("scrapes the sample apps' /metrics on the compose network", () => {
    const target = mounts(prometheus).find(({ target }) => target === '/etc/prometheus/prometheus.yml')!;
    const config = readYaml<{
      scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
    }>(target.source);
    const [job] = config.scrape_configs;
    expect(job.metrics_path).toBe('/metrics');
    const targets = job.static_configs.flatMap(({ targets }) => targets);
    expect(targets).toEqual(['sample-app:3000', 'sample-app-cluster:3000']);
    for (const host of targets.map((address) => address.split(':')[0])) {
      expect(compose.services[host].environment?.PORT).toBe('3000');
    }
  });

  it('provisions Grafana with the Prometheus service as datasource and the dashboards folder it mounts', () => {
    const provisioning = mounts(grafana).find(({ target }) => target === '/etc/grafana/provisioning')!;
    const datasources = readYaml<{ datasources: { uid: string; url: string; type: string }[] }>(
      join(provisioning.source, 'datasources/prometheus.yml'),
    );
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', uid: 'prometheus', url: 'http://prometheus:9090' }),
    ]);
    const providers = readYaml<{ providers: { options: { path: string } }[] }>(
      join(provisioning.source, 'dashboards/nestjs-redis-cache.yml'),
    );
    const dashboards = mounts(grafana).find(({ source }) => source.endsWith('grafana/dashboards'))!;
    expect(providers.providers.map(({ options }) => options.path)).toEqual([dashboards.target]);
    expect(grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(
      `${dashboards.target}/nestjs-redis-cache.json`,
    );
  });
});
