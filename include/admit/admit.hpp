// admit/admit.hpp - the whole core of admit: admission control for uploads.
//
// Standard library only. Integrations live in their own headers
// (admit/fmt.hpp for fmt, admit/asio.hpp for Asio).
#pragma once

#include "admission.hpp"
#include "config.hpp"
#include "environment.hpp"
#include "memory_resource.hpp"
#include "partition.hpp"
#include "policy.hpp"
#include "pool.hpp"
#include "rejection.hpp"
#include "reservation.hpp"
#include "reservation_record.hpp"
#include "retry.hpp"
#include "stats.hpp"
#include "ticket.hpp"
#include "units.hpp"
#include "version.hpp"
