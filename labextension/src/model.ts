/**
 * The sidebar's state, kept apart from the DOM and from JupyterLab so it can be tested
 * alone: what the kernel sent (connections, schema, semantic model, history, the last
 * answer), the search, and the cells that the panel's actions insert.
 */

export const LOAD_EXT = '%load_ext aiser_jupyter';

export interface IConnection {
  name: string;
  kind: string;
  url: string;
  current: boolean;
}

export interface IColumn {
  name: string;
  type: string;
}

export interface ITable {
  schema: string;
  name: string;
  /** The table's name in SQL, in its connection's dialect (quoted where needed). */
  sql: string;
  columns: IColumn[];
}

export interface ISchemaEntry {
  connection: string;
  tables: ITable[];
  error?: string;
}

export interface IMember {
  name: string;
  title: string;
  shortTitle: string;
  description?: string;
  type?: string;
  aggType?: string;
}

export type MemberKind = 'measure' | 'dimension' | 'segment';

export interface ICube {
  name: string;
  title: string;
  type: 'cube' | 'view';
  description?: string;
  measures: IMember[];
  dimensions: IMember[];
  segments: IMember[];
}

export interface ISemanticModel {
  source: string;
  cubes: ICube[];
}

export interface IHistoryEntry {
  at: string;
  kind: string;
  connection: string;
  engine: string;
  sql: string;
  rows: number | null;
  elapsed: number;
  error: string | null;
}

/** An answer's status: only an answered question has numbers; the others say why not. */
export type AnswerStatus = 'answered' | 'clarify' | 'unanswerable';

/** The last %%ask answer, as the Ask box shows it. */
export interface IAnswer {
  question: string;
  status: AnswerStatus;
  text: string;
  /** Close questions the data can answer, for a question not answered. */
  suggestions: string[];
  /** Whether thumbs up or down can mark it (answered, and kept in memory). */
  rateable: boolean;
  /** The user's verdict: true right, false wrong, null not given. */
  verdict: boolean | null;
}

/** Where the panel stands with the active notebook's kernel. */
export type Status = 'no-notebook' | 'connecting' | 'not-loaded' | 'ready';

export interface IVerdict {
  ok: boolean;
  message: string;
}

/** What the kernel sends over the comm. */
export type KernelMessage =
  | { type: 'hello' }
  | {
      type: 'state';
      version: string;
      connections: IConnection[];
      schema: ISchemaEntry[];
      model: ISemanticModel | null;
      history: IHistoryEntry[];
      answer: IAnswer | null;
    }
  | {
      type: 'update';
      connections?: IConnection[];
      schema?: ISchemaEntry[];
      model?: ISemanticModel | null;
      history?: IHistoryEntry[];
      answer?: IAnswer | null;
    }
  | { type: 'reply'; id: number; action: string; ok: boolean; message: string; name?: string }
  | { type: 'insert_cell'; text: string; cell_id: string | null };

export class SidebarModel {
  status: Status = 'no-notebook';
  connections: IConnection[] = [];
  schema: ISchemaEntry[] = [];
  model: ISemanticModel | null = null;
  history: IHistoryEntry[] = [];
  answer: IAnswer | null = null;
  search = '';
  /** The last verdict of "test" per connection. */
  verdicts = new Map<string, IVerdict>();
  /** A one-line notice for the user (a failed request, a removed connection). */
  notice: IVerdict | null = null;

  private _listeners = new Set<() => void>();

  /** Call `listener` after every change; returns a function that stops the calls. */
  onChange(listener: () => void): () => void {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  setStatus(status: Status): void {
    if (status !== 'ready') {
      this.connections = [];
      this.schema = [];
      this.model = null;
      this.history = [];
      this.answer = null;
      this.verdicts.clear();
      this.notice = null;
    }
    this.status = status;
    this.emit();
  }

  setSearch(search: string): void {
    this.search = search;
    this.emit();
  }

  /** Take in a message from the kernel (cells to insert are the caller's business). */
  apply(message: KernelMessage): void {
    switch (message.type) {
      case 'state':
        this.status = 'ready';
        this.connections = message.connections;
        this.schema = message.schema;
        this.model = message.model;
        this.history = message.history;
        this.answer = message.answer ?? null;
        break;
      case 'update':
        this.status = 'ready';
        if (message.connections) {
          this.connections = message.connections;
          const names = new Set(message.connections.map(c => c.name));
          this.schema = this.schema.filter(s => names.has(s.connection));
          for (const name of [...this.verdicts.keys()]) {
            if (!names.has(name)) {
              this.verdicts.delete(name);
            }
          }
        }
        if (message.schema) {
          this.schema = mergeSchema(this.schema, message.schema, this.connections);
        }
        if (message.model !== undefined) {
          this.model = message.model;
        }
        if (message.history) {
          this.history = message.history;
        }
        if (message.answer !== undefined) {
          this.answer = message.answer;
        }
        break;
      case 'reply':
        if (message.action === 'test' && message.name) {
          this.verdicts.set(message.name, { ok: message.ok, message: message.message });
        }
        // Failures, and removals (whose row disappears), are said once; the rest shows itself.
        if (!message.ok || message.action === 'remove') {
          this.notice = { ok: message.ok, message: message.message };
        }
        break;
      default:
        return;
    }
    this.emit();
  }

  /** The schema narrowed to the search: a table whose name matches keeps all its columns,
   * otherwise only the columns that match; connections with nothing left are dropped. */
  filteredSchema(): ISchemaEntry[] {
    const needle = this.search.trim().toLowerCase();
    if (!needle) {
      return this.schema;
    }
    const found: ISchemaEntry[] = [];
    for (const entry of this.schema) {
      const tables: ITable[] = [];
      for (const table of entry.tables) {
        const label = tableLabel(table).toLowerCase();
        if (label.includes(needle)) {
          tables.push(table);
          continue;
        }
        const columns = table.columns.filter(c => c.name.toLowerCase().includes(needle));
        if (columns.length) {
          tables.push({ ...table, columns });
        }
      }
      if (tables.length) {
        found.push({ ...entry, tables });
      }
    }
    return found;
  }

  /** History newest first, as the panel lists it. */
  newestFirst(): IHistoryEntry[] {
    return [...this.history].reverse();
  }

  private emit(): void {
    for (const listener of [...this._listeners]) {
      listener();
    }
  }
}

function mergeSchema(
  old: ISchemaEntry[],
  fresh: ISchemaEntry[],
  connections: IConnection[]
): ISchemaEntry[] {
  const byName = new Map(old.map(s => [s.connection, s]));
  for (const entry of fresh) {
    byName.set(entry.connection, entry);
  }
  const order = connections.map(c => c.name);
  return [...byName.values()]
    .filter(s => order.includes(s.connection))
    .sort((a, b) => order.indexOf(a.connection) - order.indexOf(b.connection));
}

/** A table as the tree shows it: schema-qualified unless in the default schema. */
export function tableLabel(table: ITable): string {
  return ['', 'main', 'public'].includes(table.schema)
    ? table.name
    : `${table.schema}.${table.name}`;
}

/** The cell a double-clicked table becomes. */
export function tableCell(connection: string, table: ITable): string {
  return `%%sql ${connection}\nSELECT * FROM ${table.sql} LIMIT 100`;
}

/** The cell a double-clicked measure, dimension or segment becomes: a Cube query in YAML
 * that runs as it is (a dimension or segment is shown against the cube's first measure). */
export function memberCell(cube: ICube, member: IMember, kind: MemberKind): string {
  const lines = ['%%query'];
  const measure = cube.measures[0]?.name;
  if (kind === 'measure') {
    lines.push(`measures: [${member.name}]`);
  } else {
    if (measure) {
      lines.push(`measures: [${measure}]`);
    }
    if (kind === 'segment') {
      if (!measure && cube.dimensions[0]) {
        lines.push(`dimensions: [${cube.dimensions[0].name}]`);
      }
      lines.push(`segments: [${member.name}]`);
    } else if (member.type === 'time') {
      lines.push('timeDimensions:', `  - dimension: ${member.name}`, '    granularity: month');
    } else {
      lines.push(`dimensions: [${member.name}]`);
    }
  }
  return lines.join('\n');
}

/** The cell a history entry becomes: the question again, or its SQL on its connection. */
export function historyCell(entry: IHistoryEntry, connections: string[]): string {
  if (entry.kind === 'ask') {
    return `%%ask\n${entry.sql}`;
  }
  const head = connections.includes(entry.connection) ? `%%sql ${entry.connection}` : '%%sql';
  return `${head}\n${entry.sql}`;
}

/** The cell the Ask box inserts and runs (and a clicked suggestion). */
export function askCell(question: string): string {
  return `%%ask\n${question.trim()}`;
}

/** Whether the answer shows thumbs: answered, kept in memory, and not judged yet. */
export function canRate(answer: IAnswer | null): boolean {
  return answer !== null && answer.status === 'answered' && answer.rateable && answer.verdict === null;
}

/** The label the Ask box puts above an answer. */
export function statusLabel(answer: IAnswer): string {
  if (answer.status === 'clarify') {
    return 'Not answered: tell me more';
  }
  if (answer.status === 'unanswerable') {
    return 'Not answered: the data cannot say';
  }
  if (answer.verdict !== null) {
    return answer.verdict ? 'Answered · you confirmed it' : 'Answered · you marked it wrong';
  }
  return 'Answered';
}

export function formatRows(rows: number | null): string {
  if (rows === null) {
    return '—';
  }
  return rows === 1 ? '1 row' : `${rows.toLocaleString('en-US')} rows`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** The time of day of an ISO timestamp ("2024-05-01T09:30:05" → "09:30:05"). */
export function formatTime(at: string): string {
  const time = at.split('T')[1] ?? at;
  return time.slice(0, 8);
}
