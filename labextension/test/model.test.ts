import { describe, expect, it } from 'vitest';

import {
  askCell,
  canRate,
  formatDuration,
  formatRows,
  formatTime,
  historyCell,
  IAnswer,
  ICube,
  IHistoryEntry,
  ISchemaEntry,
  KernelMessage,
  memberCell,
  SidebarModel,
  statusLabel,
  tableCell
} from '../src/model';

const orders = {
  schema: 'main',
  name: 'orders',
  sql: 'orders',
  columns: [
    { name: 'order_id', type: 'BIGINT' },
    { name: 'revenue', type: 'DOUBLE' }
  ]
};
const customers = {
  schema: 'sales',
  name: 'customers',
  sql: 'sales.customers',
  columns: [
    { name: 'customer_id', type: 'BIGINT' },
    { name: 'segment', type: 'VARCHAR' }
  ]
};
const duck: ISchemaEntry = { connection: 'duckdb', tables: [orders, customers] };

function state(extra: Partial<Extract<KernelMessage, { type: 'state' }>> = {}): KernelMessage {
  return {
    type: 'state',
    version: '0.1.0',
    connections: [{ name: 'duckdb', kind: 'duckdb', url: 'duckdb:///:memory:', current: true }],
    schema: [duck],
    model: null,
    history: [],
    answer: null,
    ...extra
  };
}

const cube: ICube = {
  name: 'orders',
  title: 'Orders',
  type: 'cube',
  measures: [
    { name: 'orders.count', title: 'Orders Count', shortTitle: 'Count', type: 'number', aggType: 'count' },
    { name: 'orders.revenue', title: 'Orders Revenue', shortTitle: 'Revenue', type: 'number', aggType: 'sum' }
  ],
  dimensions: [
    { name: 'orders.status', title: 'Orders Status', shortTitle: 'Status', type: 'string' },
    { name: 'orders.created_at', title: 'Orders Created at', shortTitle: 'Created at', type: 'time' }
  ],
  segments: [{ name: 'orders.completed', title: 'Orders Completed', shortTitle: 'Completed' }]
};

function answer(extra: Partial<IAnswer> = {}): IAnswer {
  return {
    question: 'revenue by region',
    status: 'answered',
    text: 'West leads on Revenue with $3,023,213.07.',
    suggestions: [],
    rateable: true,
    verdict: null,
    ...extra
  };
}

function entry(extra: Partial<IHistoryEntry>): IHistoryEntry {
  return {
    at: '2024-05-01T09:30:05',
    kind: 'sql',
    connection: 'duckdb',
    engine: 'duckdb',
    sql: 'SELECT 1',
    rows: 1,
    elapsed: 0.01,
    error: null,
    ...extra
  };
}

describe('SidebarModel', () => {
  it('starts with no notebook and becomes ready on the kernel state', () => {
    const model = new SidebarModel();
    expect(model.status).toBe('no-notebook');
    let calls = 0;
    model.onChange(() => calls++);
    model.apply(state());
    expect(model.status).toBe('ready');
    expect(model.connections.map(c => c.name)).toEqual(['duckdb']);
    expect(model.schema[0].tables.map(t => t.name)).toEqual(['orders', 'customers']);
    expect(calls).toBe(1);
  });

  it('an update replaces only the parts it carries', () => {
    const model = new SidebarModel();
    model.apply(state({ history: [entry({})] }));
    model.apply({ type: 'update', history: [entry({}), entry({ sql: 'SELECT 2' })] });
    expect(model.history.map(e => e.sql)).toEqual(['SELECT 1', 'SELECT 2']);
    expect(model.schema).toEqual([duck]); // untouched
    expect(model.model).toBeNull();
    const meta = { source: 'retail.yml', cubes: [cube] };
    model.apply({ type: 'update', model: meta });
    expect(model.model).toEqual(meta);
    expect(model.history).toHaveLength(2);
  });

  it('a new connection list drops the schema and verdicts of removed connections', () => {
    const model = new SidebarModel();
    const pg: ISchemaEntry = { connection: 'pg', tables: [orders] };
    model.apply(
      state({
        connections: [
          { name: 'duckdb', kind: 'duckdb', url: '', current: false },
          { name: 'pg', kind: 'postgres', url: 'postgresql://u:***@h/db', current: true }
        ],
        schema: [duck, pg]
      })
    );
    model.apply({ type: 'reply', id: 1, action: 'test', ok: true, message: 'OK', name: 'pg' });
    expect(model.verdicts.get('pg')).toEqual({ ok: true, message: 'OK' });
    model.apply({ type: 'update', connections: [{ name: 'duckdb', kind: 'duckdb', url: '', current: true }] });
    expect(model.schema.map(s => s.connection)).toEqual(['duckdb']);
    expect(model.verdicts.has('pg')).toBe(false);
  });

  it('a schema update for one connection keeps the others, in connection order', () => {
    const model = new SidebarModel();
    model.apply(
      state({
        connections: [
          { name: 'a', kind: 'duckdb', url: '', current: false },
          { name: 'b', kind: 'duckdb', url: '', current: true }
        ],
        schema: [
          { connection: 'a', tables: [] },
          { connection: 'b', tables: [] }
        ]
      })
    );
    model.apply({ type: 'update', schema: [{ connection: 'a', tables: [orders] }] });
    expect(model.schema.map(s => [s.connection, s.tables.length])).toEqual([
      ['a', 1],
      ['b', 0]
    ]);
  });

  it('a failed request becomes the notice; a test verdict stays with its connection', () => {
    const model = new SidebarModel();
    model.apply(state());
    model.apply({ type: 'reply', id: 2, action: 'remove', ok: false, message: 'UnknownConnection: No connection named x', name: 'x' });
    expect(model.notice).toEqual({ ok: false, message: 'UnknownConnection: No connection named x' });
    model.apply({ type: 'reply', id: 3, action: 'test', ok: false, message: 'QueryError: gone', name: 'duckdb' });
    expect(model.verdicts.get('duckdb')).toEqual({ ok: false, message: 'QueryError: gone' });
    model.apply({ type: 'reply', id: 4, action: 'remove', ok: true, message: 'removed duckdb', name: 'duckdb' });
    expect(model.notice).toEqual({ ok: true, message: 'removed duckdb' });
    model.apply({ type: 'reply', id: 5, action: 'refresh', ok: true, message: 'refreshed' });
    expect(model.notice).toEqual({ ok: true, message: 'removed duckdb' }); // a refresh says nothing
  });

  it('losing the kernel forgets what it said', () => {
    const model = new SidebarModel();
    model.apply(state({ history: [entry({})] }));
    model.setStatus('not-loaded');
    expect(model.status).toBe('not-loaded');
    expect(model.connections).toEqual([]);
    expect(model.schema).toEqual([]);
    expect(model.history).toEqual([]);
  });

  it('search keeps matching tables whole and narrows other tables to matching columns', () => {
    const model = new SidebarModel();
    model.apply(state());
    model.setSearch('ORD');
    const byTable = model.filteredSchema()[0].tables;
    expect(byTable.map(t => t.name)).toEqual(['orders']);
    expect(byTable[0].columns).toHaveLength(2);
    model.setSearch('segment');
    const byColumn = model.filteredSchema()[0].tables;
    expect(byColumn.map(t => t.name)).toEqual(['customers']);
    expect(byColumn[0].columns.map(c => c.name)).toEqual(['segment']);
    model.setSearch('sales.cust'); // the schema-qualified label matches too
    expect(model.filteredSchema()[0].tables.map(t => t.name)).toEqual(['customers']);
    model.setSearch('nothing like it');
    expect(model.filteredSchema()).toEqual([]);
    model.setSearch('  ');
    expect(model.filteredSchema()).toEqual([duck]);
  });

  it('lists history newest first without reordering what the kernel sent', () => {
    const model = new SidebarModel();
    model.apply(state({ history: [entry({ sql: 'first' }), entry({ sql: 'second' })] }));
    expect(model.newestFirst().map(e => e.sql)).toEqual(['second', 'first']);
    expect(model.history.map(e => e.sql)).toEqual(['first', 'second']);
  });
});

describe('the last answer', () => {
  it('arrives with the state, is replaced by an update, and is kept by updates without one', () => {
    const model = new SidebarModel();
    model.apply(state());
    expect(model.answer).toBeNull();
    model.apply({ type: 'update', answer: answer() });
    expect(model.answer?.text).toBe('West leads on Revenue with $3,023,213.07.');
    model.apply({ type: 'update', history: [entry({ kind: 'ask', sql: 'revenue by region' })] });
    expect(model.answer?.question).toBe('revenue by region');
    model.apply({ type: 'update', answer: { ...answer(), verdict: true } });
    expect(model.answer?.verdict).toBe(true);
    model.setStatus('not-loaded');
    expect(model.answer).toBeNull();
  });

  it('thumbs show only on an answered answer kept in memory and not judged yet', () => {
    expect(canRate(answer())).toBe(true);
    expect(canRate(answer({ verdict: false }))).toBe(false);
    expect(canRate(answer({ rateable: false }))).toBe(false);
    expect(canRate(answer({ status: 'clarify', text: 'Which revenue?' }))).toBe(false);
    expect(canRate(null)).toBe(false);
  });

  it('says its status, and a clicked suggestion becomes the cell the Ask box runs', () => {
    const declined = answer({
      status: 'unanswerable',
      text: 'The data holds no planets.',
      suggestions: ['revenue by region'],
      rateable: false
    });
    expect(statusLabel(declined)).toBe('Not answered: the data cannot say');
    expect(statusLabel(answer({ status: 'clarify' }))).toBe('Not answered: tell me more');
    expect(statusLabel(answer())).toBe('Answered');
    expect(statusLabel(answer({ verdict: true }))).toBe('Answered · you confirmed it');
    expect(statusLabel(answer({ verdict: false }))).toBe('Answered · you marked it wrong');
    expect(declined.suggestions.map(askCell)).toEqual(['%%ask\nrevenue by region']);
  });

  it('a failed feedback request is said once, as any failed request', () => {
    const model = new SidebarModel();
    model.apply(state({ answer: answer({ status: 'clarify', rateable: false }) }));
    model.apply({ type: 'reply', id: 6, action: 'feedback', ok: false, message: 'AiserError: This question was not answered (clarify): no feedback.' });
    expect(model.notice?.ok).toBe(false);
    expect(model.answer?.status).toBe('clarify');
  });
});

describe('cells', () => {
  it('a table reads its first 100 rows on its connection', () => {
    expect(tableCell('duckdb', orders)).toBe('%%sql duckdb\nSELECT * FROM orders LIMIT 100');
    expect(tableCell('pg', customers)).toBe('%%sql pg\nSELECT * FROM sales.customers LIMIT 100');
  });

  it('a measure is queried alone', () => {
    expect(memberCell(cube, cube.measures[1], 'measure')).toBe('%%query\nmeasures: [orders.revenue]');
  });

  it('a dimension is shown against the cube first measure, a time dimension by month', () => {
    expect(memberCell(cube, cube.dimensions[0], 'dimension')).toBe(
      '%%query\nmeasures: [orders.count]\ndimensions: [orders.status]'
    );
    expect(memberCell(cube, cube.dimensions[1], 'dimension')).toBe(
      '%%query\nmeasures: [orders.count]\ntimeDimensions:\n  - dimension: orders.created_at\n    granularity: month'
    );
  });

  it('a segment filters the first measure, or the first dimension of a cube without measures', () => {
    expect(memberCell(cube, cube.segments[0], 'segment')).toBe(
      '%%query\nmeasures: [orders.count]\nsegments: [orders.completed]'
    );
    const bare = { ...cube, measures: [] };
    expect(memberCell(bare, cube.segments[0], 'segment')).toBe(
      '%%query\ndimensions: [orders.status]\nsegments: [orders.completed]'
    );
  });

  it('a history entry comes back as the cell that ran it', () => {
    expect(historyCell(entry({ sql: 'SELECT 2' }), ['duckdb'])).toBe('%%sql duckdb\nSELECT 2');
    expect(historyCell(entry({ connection: 'gone' }), ['duckdb'])).toBe('%%sql\nSELECT 1');
    expect(historyCell(entry({ kind: 'ask', sql: 'revenue by month' }), [])).toBe('%%ask\nrevenue by month');
  });

  it('the Ask box trims the question', () => {
    expect(askCell('  top products \n')).toBe('%%ask\ntop products');
  });
});

describe('formatting', () => {
  it('rows, durations and times read as a person writes them', () => {
    expect(formatRows(null)).toBe('—');
    expect(formatRows(1)).toBe('1 row');
    expect(formatRows(12345)).toBe('12,345 rows');
    expect(formatDuration(0.0042)).toBe('4 ms');
    expect(formatDuration(2.345)).toBe('2.3 s');
    expect(formatDuration(125)).toBe('2 min 5 s');
    expect(formatTime('2024-05-01T09:30:05')).toBe('09:30:05');
  });
});
