/**
 * Where a checkpoint came from, as far as its folder says. The Hugging Face hub cache keeps each
 * downloaded revision in `models--{org}--{name}/snapshots/{commit}/`, so a model opened from there
 * names its repository and the exact commit; a folder anywhere else names neither (its content
 * identity, engine/identity.ts, still pins its bytes).
 */
import path from 'node:path';

export interface CheckpointOrigin {
  /** `org/name` on the hub. */
  repo: string;
  /** The 40-hex commit of the snapshot. */
  revision: string;
}

const SNAPSHOT = /^[0-9a-f]{40}$/;

/** The hub repository and commit a checkpoint folder is a snapshot of, or null when it is not in a hub cache layout. */
export function checkpointOrigin(modelDir: string): CheckpointOrigin | null {
  const dir = path.resolve(modelDir);
  const revision = path.basename(dir);
  const snapshots = path.dirname(dir);
  const repoDir = path.basename(path.dirname(snapshots));
  if (!SNAPSHOT.test(revision) || path.basename(snapshots) !== 'snapshots' || !repoDir.startsWith('models--')) return null;
  // Hub names cannot contain "--" within a part, so the first "--" after "models" splits org from name.
  const [org, ...name] = repoDir.slice('models--'.length).split('--');
  return name.length === 0 ? { repo: org, revision } : { repo: `${org}/${name.join('--')}`, revision };
}
