import { IncomingMessage, ServerResponse } from 'node:http';
import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import { sendErrorResponse } from './send-error-response.js';

/** The one exception filter: everything a Nest route, guard, pipe or middleware throws ends here. */
@Catch()
export class ErrorResponseFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    sendErrorResponse(http.getRequest<IncomingMessage>(), http.getResponse<ServerResponse>(), exception);
  }
}
