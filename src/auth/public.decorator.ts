import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'task-cache:public';

/** Lets a route through the global token guard (token issuing; later health and metrics). */
export const Public = () => SetMetadata(IS_PUBLIC, true);
