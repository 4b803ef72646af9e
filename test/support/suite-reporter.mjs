// Tells the open-handle tracking (leftover-handles.mjs) which suite is running, so that what a
// suite leaves open is named with it. Suites run in band, in the process this reporter runs in.
import { relative } from 'node:path';
import { setCurrentSuite } from './leftover-handles.mjs';

export default class SuiteReporter {
  onTestFileStart(test) {
    setCurrentSuite(relative(test.context.config.rootDir, test.path));
  }
}
