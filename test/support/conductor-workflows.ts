import { ConductorTaskDef, ConductorWorkflowDef } from './conductor-client.js';

/** Task and workflow definitions the Conductor e2e suites register. */

export const taskDef = (name: string): ConductorTaskDef => ({
  name,
  retryCount: 0,
  timeoutSeconds: 3600,
  responseTimeoutSeconds: 600,
  timeoutPolicy: 'TIME_OUT_WF',
  ownerEmail: 'e2e@example.com',
});

export const workflowDef = (name: string, tasks: ConductorWorkflowDef['tasks']): ConductorWorkflowDef => ({
  name,
  version: 1,
  schemaVersion: 2,
  ownerEmail: 'e2e@example.com',
  timeoutSeconds: 0,
  timeoutPolicy: 'ALERT_ONLY',
  tasks,
});

/** One SIMPLE task per workflow, each of its own type, so that a poll hands out that scenario's task only. */
export const simple = (type: string) => workflowDef(`${type}_wf`, [{ name: type, taskReferenceName: 'work', type: 'SIMPLE', inputParameters: { orderId: '${workflow.input.orderId}' } }]);

export const SYSTEM_WF = workflowDef('system_tasks_wf', [
  { name: 'inline_step', taskReferenceName: 'inline', type: 'INLINE', inputParameters: { evaluatorType: 'javascript', expression: '$.a + $.b', a: '${workflow.input.a}', b: '${workflow.input.b}' } },
  { name: 'jq_step', taskReferenceName: 'jq', type: 'JSON_JQ_TRANSFORM', inputParameters: { x: '${inline.output.result}', queryExpression: '{doubled: (.x * 2)}' } },
  { name: 'wait_step', taskReferenceName: 'wait', type: 'WAIT', inputParameters: {} },
]);
