package emulator

import "fmt"

// SetSuspended suspends or unsuspends a user who is not deleted (by id,
// primary email or alias), as an admin does in the Admin console (Google's
// users.update with suspended): what a test needs to undo a suspension
// while a request waits. Safe for concurrent use with requests.
func (d *Directory) SetSuspended(key string, suspended bool) error {
	d.state.Lock()
	defer d.state.Unlock()
	u := d.user(key)
	if u == nil {
		return fmt.Errorf("emulator: no user %q", key)
	}
	u.Suspended = suspended
	return nil
}
