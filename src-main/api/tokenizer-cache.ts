/**
 * Tokenizers of the models that made stored runs, for showing and exporting their token ids as
 * text: the loaded engine's own where it is that model, otherwise read once from the run's
 * checkpoint folder and kept.
 */
import type { Engine } from '../engine/engine.ts';
import { loadTokenizer, type Tokenizer } from '../engine/tokenizer.ts';
import type { TokenText } from '../store/export.ts';
import { showToken } from './format.ts';

export class TokenizerCache {
  private readonly tokenizers = new Map<string, Tokenizer>();

  constructor(private readonly loaded: () => Engine | undefined) {}

  of(modelDir: string): Tokenizer {
    const engine = this.loaded();
    if (engine?.info.modelDir === modelDir) return engine.tokenizer;
    let t = this.tokenizers.get(modelDir);
    if (!t) this.tokenizers.set(modelDir, (t = loadTokenizer(modelDir)));
    return t;
  }

  /**
   * The exports' token texts, by the run's own tokenizer; none (empty texts) when its checkpoint
   * folder is gone or unreadable, since the numbers must still export.
   */
  texts(modelDir: string): TokenText | undefined {
    let tokenizer: Tokenizer;
    try {
      tokenizer = this.of(modelDir);
    } catch {
      return undefined;
    }
    // A sweep's export names the same few thousand ids millions of times.
    const seen = new Map<number, string>();
    return (id) => {
      let t = seen.get(id);
      if (t === undefined) seen.set(id, (t = showToken(tokenizer.tokenString(id))));
      return t;
    };
  }
}
