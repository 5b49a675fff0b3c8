//! The events a trigger can be registered for and the states a registration can be in. Pure
//! Rust: parsing and the `session_replication_role` rule are the same on every PostgreSQL version.

use crate::error::{Checked, Refusal};
use pgrx::PgSqlErrorCode;

/// An event a registered trigger fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Login,
    Logout,
    DdlCommandStart,
    DdlCommandEnd,
    SqlDrop,
    TableRewrite,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::Login,
        Event::Logout,
        Event::DdlCommandStart,
        Event::DdlCommandEnd,
        Event::SqlDrop,
        Event::TableRewrite,
    ];

    /// The DDL events, whose registrations fire through a native event trigger per event.
    pub const DDL: [Event; 4] = [Event::DdlCommandStart, Event::DdlCommandEnd, Event::SqlDrop, Event::TableRewrite];

    /// The name used in the catalog, in `TG_EVENT` and in the context.
    pub fn name(self) -> &'static str {
        match self {
            Event::Login => "login",
            Event::Logout => "logout",
            Event::DdlCommandStart => "ddl_command_start",
            Event::DdlCommandEnd => "ddl_command_end",
            Event::SqlDrop => "sql_drop",
            Event::TableRewrite => "table_rewrite",
        }
    }

    /// Position in per-event arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses an event name exactly as stored (lower case), refusing anything else.
    pub fn parse(name: &str) -> Checked<Event> {
        Event::named(name).ok_or_else(|| {
            Refusal::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("unrecognized event name \"{name}\""))
                .hint(format!("Valid events are: {}.", Event::ALL.map(Event::name).join(", ")))
        })
    }

    /// The event of this exact name, if any.
    pub fn named(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|event| event.name() == name)
    }

    /// Session events carry no command, so they take no tag filter (as native login triggers).
    pub fn is_session_event(self) -> bool {
        matches!(self, Event::Login | Event::Logout)
    }
}

/// A registration's state, with the letters `pg_event_trigger.evtenabled` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerState {
    /// `O`: fires when `session_replication_role` is `origin` or `local`.
    Origin,
    /// `D`: never fires.
    Disabled,
    /// `R`: fires only when `session_replication_role` is `replica`.
    Replica,
    /// `A`: always fires.
    Always,
}

impl TriggerState {
    pub fn letter(self) -> char {
        match self {
            TriggerState::Origin => 'O',
            TriggerState::Disabled => 'D',
            TriggerState::Replica => 'R',
            TriggerState::Always => 'A',
        }
    }

    pub fn from_letter(letter: char) -> Option<TriggerState> {
        match letter {
            'O' => Some(TriggerState::Origin),
            'D' => Some(TriggerState::Disabled),
            'R' => Some(TriggerState::Replica),
            'A' => Some(TriggerState::Always),
            _ => None,
        }
    }

    /// Accepts the catalog letters and the words of `ALTER EVENT TRIGGER` (case-insensitive).
    pub fn parse(text: &str) -> Checked<TriggerState> {
        let state = match text.trim().to_ascii_lowercase().as_str() {
            "o" | "origin" | "enable" | "enabled" => TriggerState::Origin,
            "d" | "disable" | "disabled" => TriggerState::Disabled,
            "r" | "replica" => TriggerState::Replica,
            "a" | "always" => TriggerState::Always,
            _ => {
                return Err(Refusal::new(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("unrecognized trigger state \"{text}\""),
                )
                .hint("Valid states are origin (O), disabled (D), replica (R) and always (A)."));
            }
        };
        Ok(state)
    }

    /// Whether a trigger in this state fires, given whether `session_replication_role` is
    /// `replica` (the rule of `filter_event_trigger` in PostgreSQL's event_trigger.c).
    pub fn fires(self, replica_role: bool) -> bool {
        match self {
            TriggerState::Origin => !replica_role,
            TriggerState::Replica => replica_role,
            TriggerState::Always => true,
            TriggerState::Disabled => false,
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn events_round_trip_and_unknown_is_refused() {
        for event in Event::ALL {
            assert_eq!(Event::parse(event.name()).unwrap(), event);
        }
        assert!(Event::parse("LOGIN").is_err());
        assert!(Event::parse("").is_err());
    }

    #[test]
    fn states_follow_session_replication_role() {
        assert!(TriggerState::Origin.fires(false) && !TriggerState::Origin.fires(true));
        assert!(!TriggerState::Replica.fires(false) && TriggerState::Replica.fires(true));
        assert!(TriggerState::Always.fires(false) && TriggerState::Always.fires(true));
        assert!(!TriggerState::Disabled.fires(false) && !TriggerState::Disabled.fires(true));
        assert_eq!(TriggerState::parse("ALWAYS").unwrap(), TriggerState::Always);
        assert_eq!(TriggerState::parse("D").unwrap(), TriggerState::Disabled);
        assert!(TriggerState::parse("sometimes").is_err());
    }
}
