/**
 * The typed form of a Dockerfile. Words are kept raw (unexpanded, quotes still in place) as the
 * Dockerfile wrote them; `expandInstruction` produces the same shapes with Docker's expansion
 * applied, so one type serves both.
 */
import type { EscapeChar } from './lex.js';
import type { DockerfileWarning, ParserDirective } from './lines.js';

export type { EscapeChar, DockerfileWarning, ParserDirective };

/** Where an instruction sits in its Dockerfile. */
export interface InstructionSource {
  /** 1-based line where the instruction starts. */
  line: number;
  /** 1-based line where it ends, continuation lines and heredoc bodies included. */
  endLine: number;
  /** The instruction as Docker records it: continuation lines joined, comments removed. */
  original: string;
}

/** Shell form is handed to the SHELL as one string; exec form is run as given. */
export type CommandLine = { form: 'shell'; text: string } | { form: 'exec'; args: string[] };

/** A here-document opened on the instruction's line. */
export interface Heredoc {
  /** The delimiter, quotes removed. */
  name: string;
  /** The body, line endings kept; leading tabs already removed for `<<-`. */
  body: string;
  /** `<<-` was used. */
  stripTabs: boolean;
  /** False when the delimiter was quoted: the body is then never expanded. */
  expand: boolean;
  /** The file descriptor of `3<<EOF`; absent for plain `<<EOF`. */
  fd?: number;
}

export interface FromInstruction extends InstructionSource {
  kind: 'from';
  /** The image reference, stage name or `scratch`, unexpanded. */
  image: string;
  /** The `AS` name, lowercased as Docker does. */
  stageName?: string;
  /** `--platform`, unexpanded. */
  platform?: string;
}

export interface RunInstruction extends InstructionSource {
  kind: 'run';
  command: CommandLine;
  /** Heredocs opened by a shell-form RUN, in order. */
  heredocs: Heredoc[];
  /** `--mount` values as written, one per flag. */
  mounts: string[];
  network?: 'default' | 'none' | 'host';
  security?: 'sandbox' | 'insecure';
}

interface CopyLike extends InstructionSource {
  /** Source paths, URLs or git references, in order. */
  sources: string[];
  /** Sources given as heredocs (`COPY <<EOF /dest`): files named after the delimiter. */
  inline: Heredoc[];
  dest: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  exclude: string[];
}

export interface CopyInstruction extends CopyLike {
  kind: 'copy';
  /** `--from`: a stage name, a stage index or an image reference; variables are refused, as Docker refuses them. */
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends CopyLike {
  kind: 'add';
  checksum?: string;
  keepGitDir: boolean;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface EnvInstruction extends InstructionSource {
  kind: 'env';
  pairs: KeyValue[];
}

export interface ArgDeclaration {
  name: string;
  /** The default after `=`; absent for a bare `ARG NAME`. */
  defaultValue?: string;
}

export interface ArgInstruction extends InstructionSource {
  kind: 'arg';
  args: ArgDeclaration[];
}

export interface LabelInstruction extends InstructionSource {
  kind: 'label';
  pairs: KeyValue[];
}

export interface ExposeInstruction extends InstructionSource {
  kind: 'expose';
  ports: string[];
}

export interface VolumeInstruction extends InstructionSource {
  kind: 'volume';
  paths: string[];
}

export interface UserInstruction extends InstructionSource {
  kind: 'user';
  user: string;
}

export interface WorkdirInstruction extends InstructionSource {
  kind: 'workdir';
  path: string;
}

export interface EntrypointInstruction extends InstructionSource {
  kind: 'entrypoint';
  command: CommandLine;
}

export interface CmdInstruction extends InstructionSource {
  kind: 'cmd';
  command: CommandLine;
}

export interface ShellInstruction extends InstructionSource {
  kind: 'shell';
  shell: string[];
}

/** Durations are nanoseconds, as in the image config; absent means Docker's default. */
export interface HealthcheckOptions {
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export type Healthcheck = { type: 'none' } | ({ type: 'cmd'; command: CommandLine } & HealthcheckOptions);

export interface HealthcheckInstruction extends InstructionSource {
  kind: 'healthcheck';
  check: Healthcheck;
}

export interface StopsignalInstruction extends InstructionSource {
  kind: 'stopsignal';
  signal: string;
}

export type TriggerInstruction = Exclude<Instruction, FromInstruction | OnbuildInstruction | MaintainerInstruction>;

export interface OnbuildInstruction extends InstructionSource {
  kind: 'onbuild';
  /** The instruction to run in builds that use this image as their base. */
  trigger: TriggerInstruction;
  /** The text stored in the image config's OnBuild list (heredoc bodies appended). */
  expression: string;
}

export interface MaintainerInstruction extends InstructionSource {
  kind: 'maintainer';
  maintainer: string;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CopyInstruction
  | AddInstruction
  | EnvInstruction
  | ArgInstruction
  | LabelInstruction
  | ExposeInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | EntrypointInstruction
  | CmdInstruction
  | ShellInstruction
  | HealthcheckInstruction
  | StopsignalInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

export type InstructionKind = Instruction['kind'];

/** The instructions of one build stage, in order, after its FROM. */
export interface Stage {
  index: number;
  /** The `AS` name, lowercased; absent for unnamed stages. */
  name?: string;
  from: FromInstruction;
  instructions: Exclude<Instruction, FromInstruction>[];
}

export interface Dockerfile {
  file: string;
  escape: EscapeChar;
  /** `# syntax=` is accepted and otherwise ignored: kiln has one built-in frontend. */
  directives: ParserDirective[];
  /** ARGs before the first FROM: visible in FROM lines, and in a stage only after `ARG NAME`. */
  globalArgs: ArgInstruction[];
  stages: Stage[];
  warnings: DockerfileWarning[];
}
