using System.Diagnostics;

namespace Multiprocessing;

/// <summary>
/// The parent's side of one live child: its process, its channel, and the forwarding of its
/// console output (whose last stderr lines are kept to explain a crash).
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private const int TailLines = 20;

    private readonly Process _process;
    private readonly Queue<string> _stderrTail = new();
    private readonly TaskCompletionSource<ExitStatus> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _stdoutPump;
    private readonly Task _stderrPump;
    private FrameChannel? _channel;
    private FrameChannel? _control;

    public ChildProcess(Process process, string name)
    {
        _process = process;
        Name = name;
        Pid = process.Id;
        // Read while the child surely exists: it names the runtime's files that a crash leaves behind.
        _startKey = Platform.Current.ProcessStartKey(Pid);
        // Console.Out is looked up per line: it may be redirected after this child (a spare) started.
        _stdoutPump = Pump(process.StandardOutput, static () => Console.Out, keepTail: false);
        _stderrPump = Pump(process.StandardError, static () => Console.Error, keepTail: true);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => OnProcessExited();
        if (process.HasExited) OnProcessExited();
    }

    /// <summary>The name it serves under (a spare is renamed when taken).</summary>
    public string Name { get; set; }
    public int Pid { get; }
    public FrameChannel Channel => _channel ?? throw new InvalidOperationException("The child has not connected.");

    /// <summary>Completes when the process has exited and its output has been drained.</summary>
    public Task<ExitStatus> Exited => _exited.Task;

    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>Calls and results travel on <paramref name="data"/>; <paramref name="control"/> carries cancellations, read by the child while a call runs.</summary>
    public void Attach(FrameChannel data, FrameChannel control)
    {
        _channel = data;
        _control = control;
    }

    /// <summary>Sends frames on the control channel; false if the child is gone.</summary>
    public bool SendControl(ReadOnlySpan<byte> frames)
    {
        try
        {
            _control?.Send(frames);
            return _control is not null;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    public IReadOnlyList<string> StderrTail()
    {
        lock (_stderrTail) return [.. _stderrTail];
    }

    public void Kill() => Signal(Platform.SigKill);

    /// <summary>
    /// How the child ended: waits up to <paramref name="grace"/> for it (its channel closed, so it should be leaving);
    /// a child that lingers (a foreground thread of its code?) is killed and waited for 10 s more.
    /// </summary>
    public ExitStatus WaitOrKill(TimeSpan grace)
    {
        if (Exited.Wait(grace)) return Exited.Result;
        Kill();
        return Exited.Wait(TimeSpan.FromSeconds(10)) ? Exited.Result : new ExitStatus(null, Platform.SigKill);
    }

    public void Signal(int signal)
    {
        // The process object knows at once when the child was reaped (our exit task waits for its output too):
        // never signal a pid that may already belong to another process.
        if (!HasExited && !_process.HasExited) Platform.Current.SendSignal(Pid, signal);
    }

    /// <summary>Closes the channel; a child blocked reading it sees end of stream and exits.</summary>
    public void CloseChannel()
    {
        _channel?.Dispose();
        _control?.Dispose();
    }

    public void Dispose()
    {
        CloseChannel();
        _process.Dispose();
    }

    private readonly long? _startKey;

    private void OnProcessExited()
    {
        if (_exited.Task.IsCompleted) return;
        _ = Task.Run(async () =>
        {
            int code;
            try { code = _process.ExitCode; }
            catch (InvalidOperationException) { code = -1; }
            // Output may still be in the pipes; a grandchild holding them open must not stall us.
            await Task.WhenAny(Task.WhenAll(_stdoutPump, _stderrPump), Task.Delay(2000)).ConfigureAwait(false);
            _exited.TrySetResult(ExitStatus.FromDotNet(code));
            // A worker killed or crashed leaves its runtime's diagnostic sockets behind; a test suite
            // that kills workers would otherwise leave thousands in /tmp.
            if (code != 0 && _startKey is { } key)
            {
                try { Platform.Current.RemoveRuntimeLeftovers(Pid, key); }
                catch (Exception) { /* best effort */ }
            }
        });
    }

    private Task Pump(StreamReader from, Func<TextWriter> to, bool keepTail) => Task.Run(async () =>
    {
        try
        {
            while (await from.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                if (keepTail)
                {
                    lock (_stderrTail)
                    {
                        if (_stderrTail.Count == TailLines) _stderrTail.Dequeue();
                        _stderrTail.Enqueue(line);
                    }
                }
                to().WriteLine(line);
            }
        }
        catch (Exception)
        {
            // The pipe broke because the child died; what was read is what there is.
        }
    });
}
