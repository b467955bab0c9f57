// kaniko's --git flag: `--git branch=main,single-branch=true` or one key per --git.
import { KilnError } from '../../util/errors.js';

export interface GitOptions {
  /** Branch (else tag) to fetch; replaces the #REF of the context, as in kaniko. */
  branch?: string;
  /** Accepted for kaniko compatibility: kiln always fetches the one commit it builds. */
  singleBranch: boolean;
  recurseSubmodules: boolean;
  /** Do not verify the git server's TLS certificate. */
  insecureSkipTls: boolean;
}

const USE = 'use branch=NAME, single-branch=BOOL, recurse-submodules=BOOL or insecure-skip-tls=BOOL';

// Go's strconv.ParseBool, which kaniko applies to these values.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

export function parseGitFlag(values: readonly string[] | string | undefined): GitOptions {
  const options: GitOptions = { singleBranch: false, recurseSubmodules: false, insecureSkipTls: false };
  const list = values === undefined ? [] : typeof values === 'string' ? [values] : values;
  for (const value of list) {
    // A comma starts a new pair only before `key=`, so a branch name may still hold a comma.
    for (const pair of String(value).split(/,(?=[A-Za-z-]+=)/)) {
      const at = pair.indexOf('=');
      if (at <= 0) throw new KilnError('USAGE', `--git ${value}: ${pair === '' ? 'an empty option' : pair} is not KEY=VALUE; ${USE}.`);
      const key = pair.slice(0, at);
      const text = pair.slice(at + 1);
      const bool = (): boolean => {
        if (TRUE.has(text)) return true;
        if (FALSE.has(text)) return false;
        throw new KilnError('USAGE', `--git ${value}: ${key} takes true or false, not ${text === '' ? 'nothing' : text}.`);
      };
      switch (key) {
        case 'branch':
          if (text === '') delete options.branch;
          else options.branch = text;
          break;
        case 'single-branch':
          options.singleBranch = bool();
          break;
        case 'recurse-submodules':
          options.recurseSubmodules = bool();
          break;
        case 'insecure-skip-tls':
          options.insecureSkipTls = bool();
          break;
        default:
          throw new KilnError('USAGE', `--git ${value}: ${key} is not a --git option; ${USE}.`);
      }
    }
  }
  return options;
}
