import { IsNotEmpty, IsString, MaxLength } from 'class-validator';

/** The body of POST /api/token, as Orkes defines it. */
export class GenerateTokenRequest {
  @IsString() @IsNotEmpty() @MaxLength(256)
  keyId: string;

  @IsString() @IsNotEmpty() @MaxLength(1024)
  keySecret: string;
}
