// The registry of kiln's build benchmarks: the harness's plain-HTTP docker-registry on
// loopback, holding the Debian bookworm base (the harness's cached debootstrap image, pushed
// by skopeo) that every tool under comparison pulls.
import { debianLayout, pushLayout, startRegistry, type RunningRegistry } from '../integration/harness/index.js';

export interface BenchRegistry {
  registry: RunningRegistry;
  /** `127.0.0.1:PORT/base/debian:bookworm` */
  baseRef: string;
  stop(): Promise<void>;
}

export async function startBenchRegistry(): Promise<BenchRegistry> {
  const layout = await debianLayout();
  const registry = await startRegistry('plain');
  try {
    const repoAndTag = `base/debian:${layout.tag}`;
    await pushLayout(layout.dir, layout.tag, registry, repoAndTag);
    return { registry, baseRef: `${registry.host}/${repoAndTag}`, stop: () => registry.stop() };
  } catch (error) {
    await registry.stop();
    throw error;
  }
}
