/**
 * Commands hook: validation on create (filters), dispatch after create (action), stream consumers
 * for responses and connect events (started with the server), and the sweeper (schedule).
 * Registration only; the logic is in ../shared/commands-service and ../shared/commands.
 */

import { defineHook } from '@directus/extensions-sdk';
import { CommandResponseMessage, ConnectionEventMessage, GROUPS } from '@fleet/daemon/contract';
import { parseCommandConfig } from '../shared/commands';
import {
  type Ctx,
  closeRuntime,
  currentRuntime,
  dispatchDeviceSafely,
  filterCreate,
  filterUpdate,
  handleConnectionEvent,
  handleResponses,
  installRuntime,
  type Runtime,
  startConsumer,
  sweep,
} from '../shared/commands-service';

function startConsumers(ctx: Ctx, runtime: Runtime): void {
  if (!runtime.config.redis || runtime.closed) return;
  const { keys } = runtime;
  runtime.stops.push(
    startConsumer(runtime, 'responses', {
      stream: keys.commandsResponses,
      group: GROUPS.commandResponses,
      startId: '0',
      logger: ctx.logger,
      handleGroup: (entries) => handleResponses(ctx, runtime, entries),
      // Outcomes of one command stay in order; different commands are written side by side.
      message: CommandResponseMessage,
      keyOf: (r) => r.commandId,
      parallel: 4,
    }),
    startConsumer(runtime, 'events', {
      stream: keys.connectionsEvents,
      group: GROUPS.commandDispatch,
      startId: '$',
      logger: ctx.logger,
      handleGroup: async (events) => {
        for (const e of events) await handleConnectionEvent(ctx, runtime, e);
      },
      message: ConnectionEventMessage,
      keyOf: (e) => e.imei,
      parallel: 4,
    }),
  );
}

export default defineHook(({ filter, action, schedule }, ctx) => {
  const config = parseCommandConfig(ctx.env);
  const ready = installRuntime(config);
  const runtime = () => currentRuntime() as Runtime;

  if (!config.redis) ctx.logger.warn('fleet commands: REDIS is not set; commands will stay pending');

  filter('commands.items.create', (payload, _meta, { database, accountability }) =>
    filterCreate(payload as Record<string, unknown>, database, accountability, config),
  );
  filter('commands.items.update', (payload, _meta, { database, accountability }) =>
    filterUpdate(payload as Record<string, unknown>, database, accountability),
  );

  action('commands.items.create', async (meta) => {
    await ready;
    const device = (meta.payload as Record<string, unknown>).device;
    if (typeof device === 'string' || typeof device === 'number') await dispatchDeviceSafely(ctx, runtime(), device);
  });

  action('server.start', async () => {
    const rt = await ready.then(runtime);
    rt.serverStarted = true;
    startConsumers(ctx, rt);
  });
  action('server.stop', async () => {
    const rt = currentRuntime();
    if (rt) await closeRuntime(rt);
  });
  // A reload re-registers the hook in a running server, where `server.start` will not fire again.
  void ready.then((rt) => {
    if (rt.serverStarted) startConsumers(ctx, rt);
  });

  schedule(config.sweepCron, async () => {
    try {
      const report = await sweep(ctx, runtime());
      if (report.expired + report.orphaned + report.lost > 0) ctx.logger.info({ report }, 'fleet commands: sweep');
    } catch (err) {
      ctx.logger.warn({ err }, 'fleet commands: sweep failed');
    }
  });
});
