import type { FastifyInstance } from 'fastify'
import type { Access } from '../gateway/access.js'
import type { DecisionService } from '../service.js'

export function registerAuthzenRoutes (_app: FastifyInstance, _service: DecisionService, _access: Access, _guard: unknown[]): void {}
