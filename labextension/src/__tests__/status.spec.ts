import { StatusModel } from '../status';
import { IStatus } from '../model';

const ok: IStatus = { broker: 'ok', models: ['gpt'], vault: { reachable: true } };

/** Let the model's awaited fetch settle. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve();
  }
}

describe('StatusModel', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('refreshes on its interval while the server answers', async () => {
    const fetch = jest.fn().mockResolvedValue(ok);
    const model = new StatusModel({ fetch, intervalMs: 1000, isVisible: () => true });
    const changes: number[] = [];
    model.changed.connect(() => changes.push(1));
    model.start();
    await flush();
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(model.status).toEqual(ok);
    expect(model.scheduledDelay).toBe(1000);
    jest.advanceTimersByTime(1000);
    await flush();
    expect(fetch).toHaveBeenCalledTimes(2);
    expect(changes.length).toBe(2);
    model.dispose();
  });

  it('backs off while the server is unreachable, and recovers', async () => {
    const fetch = jest
      .fn()
      .mockRejectedValueOnce(Object.assign(new Error('boom'), { name: 'NetworkError' }))
      .mockRejectedValueOnce(Object.assign(new Error('x'), { status: 503 }))
      .mockResolvedValue(ok);
    const model = new StatusModel({ fetch, intervalMs: 1000, maxMs: 3000, isVisible: () => true });
    model.start();
    await flush();
    expect(model.error).toBe('network error');
    expect(model.failures).toBe(1);
    expect(model.scheduledDelay).toBe(2000);
    jest.advanceTimersByTime(1999);
    await flush();
    expect(fetch).toHaveBeenCalledTimes(1); // not before the backed-off delay
    jest.advanceTimersByTime(1);
    await flush();
    expect(model.error).toBe('HTTP 503');
    expect(model.scheduledDelay).toBe(3000); // capped
    jest.advanceTimersByTime(3000);
    await flush();
    expect(model.error).toBeNull();
    expect(model.failures).toBe(0);
    expect(model.scheduledDelay).toBe(1000);
    model.dispose();
  });

  it('does not fetch while the page is hidden', async () => {
    let visible = false;
    const fetch = jest.fn().mockResolvedValue(ok);
    const model = new StatusModel({ fetch, intervalMs: 1000, isVisible: () => visible });
    model.start();
    await flush();
    jest.advanceTimersByTime(5000);
    await flush();
    expect(fetch).not.toHaveBeenCalled();
    visible = true;
    jest.advanceTimersByTime(1000);
    await flush();
    expect(fetch).toHaveBeenCalledTimes(1);
    model.dispose();
  });

  it('keeps the newest answer when refreshes overlap', async () => {
    let resolveFirst: (s: IStatus) => void = () => undefined;
    const fetch = jest
      .fn()
      .mockImplementationOnce(() => new Promise<IStatus>(r => (resolveFirst = r)))
      .mockResolvedValueOnce({ ...ok, models: ['new'] });
    const model = new StatusModel({ fetch, intervalMs: 1000, isVisible: () => true });
    const first = model.refresh();
    await model.refresh();
    resolveFirst({ ...ok, models: ['old'] });
    await first;
    expect(model.status?.models).toEqual(['new']);
    model.dispose();
  });

  it('stops after dispose', async () => {
    const fetch = jest.fn().mockResolvedValue(ok);
    const model = new StatusModel({ fetch, intervalMs: 1000, isVisible: () => true });
    model.start();
    await flush();
    model.dispose();
    jest.advanceTimersByTime(10000);
    await flush();
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(model.scheduledDelay).toBeNull();
  });
});
